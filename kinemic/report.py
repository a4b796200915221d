"""Stage logic of `report`: aggregate per-seed accuracies into the paper's statistics and draw the plots.

The paper reports the median top-1 over five seeds for Table 1 and mean +- std for Table 2; both are written, with the
per-seed values, as one flat JSON so `dvc metrics diff` and `dvc exp show` give the tables directly. Plots are written
both as data series (for `dvc plots show/diff`, which overlays experiments) and as PNG images (which render offline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def summarize_accuracy(per_seed: Mapping[int, float]) -> dict[str, float]:
    """Median / mean / std (population, as numpy) / min / max of top-1 over seeds, plus each seed's value."""
    if not per_seed:
        raise ValueError("no per-seed accuracies to summarise")
    values = np.array([per_seed[s] for s in sorted(per_seed)], dtype=np.float64)
    out = {
        "top1.median": float(np.median(values)),
        "top1.mean": float(values.mean()),
        "top1.std": float(values.std()),
        "top1.min": float(values.min()),
        "top1.max": float(values.max()),
        "seeds": len(values),
    }
    out.update({f"top1.seed_{s}": float(per_seed[s]) for s in sorted(per_seed)})
    return out


def headline_line(summary: Mapping[str, float]) -> str:
    """The one line a run ends with; the comparisons are left out when the baselines could not give them (e.g. gap
    closure when all real data does not beat the few-shot set, as on tiny test worlds)."""
    line = (f"median top-1 {100 * summary['top1.median']:.1f}% (mean {100 * summary['top1.mean']:.1f} +- "
            f"{100 * summary['top1.std']:.1f}, 95% CI [{100 * summary['top1.mean.ci_low']:.1f}, "
            f"{100 * summary['top1.mean.ci_high']:.1f}]) over {summary['seeds']} seeds")
    if "vs_real_only" in summary:
        line += (f"; vs real only {100 * summary['vs_real_only']:+.1f} points [CI "
                 f"{100 * summary['vs_real_only.ci_low']:+.1f}, {100 * summary['vs_real_only.ci_high']:+.1f}]")
    if "gap_closure" in summary:
        line += f", gap closure {summary['gap_closure']:.2f}"
    return line


def write_accuracy_plot(per_seed: Mapping[int, float], tsv: Path, png: Path, title: str) -> None:
    seeds = sorted(per_seed)
    tsv.parent.mkdir(parents=True, exist_ok=True)
    tsv.write_text("seed\ttop1\n" + "".join(f"{s}\t{per_seed[s]:.6f}\n" for s in seeds))
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=100)
    ax.bar([str(s) for s in seeds], [100 * per_seed[s] for s in seeds], color="#4c72b0")
    median = 100 * float(np.median([per_seed[s] for s in seeds]))
    ax.axhline(median, color="#dd8452", linestyle="--", label=f"median {median:.1f}%")
    ax.set_xlabel("seed")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)


def write_confusion(
    confusions: Sequence[np.ndarray], class_names: Sequence[str], csv: Path, png: Path, title: str
) -> None:
    """The summed confusion over seeds, as (actual, predicted) rows for DVC's confusion template and as a PNG."""
    total = np.sum(confusions, axis=0).astype(np.int64)
    rows = ["actual,predicted"]
    for i, actual in enumerate(class_names):
        for j, predicted in enumerate(class_names):
            rows += [f"{actual},{predicted}"] * int(total[i, j])
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("\n".join(rows) + "\n")
    normalised = total / np.maximum(total.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.1 * len(class_names) + 1.5), dpi=100)
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{100 * normalised[i, j]:.0f}%", ha="center", va="center",
                    color="white" if normalised[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)


def plot_curves(rows: Sequence[Mapping[str, float]], png: Path, title: str,
                columns: Sequence[str] | None = None) -> None:
    """Training curves as a PNG, one panel per column that has values (their data DVCLive writes, kinemic.live).

    `columns` fixes the panels' order, so every method's plot reads alike; by default they are the last row's.
    """
    if not rows:
        raise ValueError("no curve rows to plot")
    columns = list(columns) if columns is not None else [k for k in rows[-1] if k != "step"]
    png.parent.mkdir(parents=True, exist_ok=True)
    shown = [c for c in columns if any(c in row for row in rows)]
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.4), dpi=90, squeeze=False)
    steps = [row["step"] for row in rows]
    for ax, column in zip(axes[0], shown, strict=True):
        ax.plot(steps, [row.get(column, np.nan) for row in rows], color="#4c72b0", linewidth=1.2)
        ax.set_title(column, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)


def write_similarity_plot(pairs, csv: Path, png: Path) -> None:
    """Cosine similarity of the mined motions against their rank, one line per class (mining's k trade-off).

    The CSV is wide, `rank` and one column per class, because DVC draws one line per y column, not per group.
    """
    csv.parent.mkdir(parents=True, exist_ok=True)
    wide = pairs.pivot(index="rank", columns="class_name", values="similarity")
    wide = wide[list(dict.fromkeys(pairs["class_name"]))]  # classes in mining order
    wide.reset_index().to_csv(csv, index=False, float_format="%.6f")
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=100)
    for name, group in pairs.groupby("class_name", sort=False):
        ax.plot(group["rank"], group["similarity"], label=name, linewidth=1.2)
    ax.set_xlabel("rank")
    ax.set_ylabel("cosine similarity to the class prompt")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, metadata={"Software": None})
    plt.close(fig)
