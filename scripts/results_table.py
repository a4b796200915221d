"""Compare experiments: a markdown table and a bar chart of the `report` summaries of DVC experiments.

    python scripts/results_table.py [--out plots/compare.png] [-- DVC EXP SHOW OPTIONS]

Reads `dvc exp show --json` with the given options (default `--all-commits`: the workspace, every commit and their
finished experiments; `-- --rev <commit>` keeps one commit's) and prints one
row per run with a `metrics/summary.json`: method and switches, name, median / mean +- std top-1, and the generative
metrics (FID, diversity, multimodality, recognition by the evaluator, joint speed and acceleration beside the real
clips'). The README's results table is produced this way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _runs(entries: list[dict]):
    """Yield (name, params, summary) for the workspace, baselines and experiments in `dvc exp show --json`; a run
    identical to one already yielded (the workspace of a committed baseline) is yielded once."""
    seen = set()
    for entry in sorted(entries, key=lambda e: e.get("rev") == "workspace"):  # name a committed run by its commit
        finished = [exp for exp in entry.get("experiments") or [] if (exp.get("executor") or {}).get("state")
                    in (None, "success")]  # queued and running experiments show their baseline's numbers
        for run in [entry, *[r for exp in finished for r in exp.get("revs", [])]]:
            data = run.get("data") or {}
            summary = ((data.get("metrics") or {}).get("metrics/summary.json") or {}).get("data")
            params = ((data.get("params") or {}).get("params.yaml") or {}).get("data")
            key = json.dumps([params, summary], sort_keys=True)
            if summary and params and key not in seen:
                seen.add(key)
                rev = run.get("rev", "?")
                yield run.get("name") or (rev if rev == "workspace" else rev[:7]), params, summary


ROW_ORDER = ["real data only (few-shot)", "MDM zero-shot", "MDM + LoRA", "MDM from scratch", "KineMIC (Base)",
             "KineMIC + dist", "KineMIC + dww", "KineMIC (full)", "ground truth (all real data)"]  # the paper's order


def _label(params: dict) -> str:
    train, evaluate = params["train"], params["evaluate"]
    if evaluate["train_data"] == "fewshot":
        return "real data only (few-shot)"
    if evaluate["train_data"] == "all_real":
        return "ground truth (all real data)"
    method = train["method"]
    if method != "kinemic":
        return {"lora": "MDM + LoRA", "scratch": "MDM from scratch", "zeroshot": "MDM zero-shot"}[method]
    switches = {(False, False): "KineMIC (Base)", (True, False): "KineMIC + dist", (False, True): "KineMIC + dww",
                (True, True): "KineMIC (full)"}
    return switches[(bool(train["use_dist"]), bool(train["use_dww"]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("plots/compare.png"))
    parser.add_argument("dvc_args", nargs="*", default=["--all-commits"], help="options for `dvc exp show`")
    args = parser.parse_args()
    shown = subprocess.run(["dvc", "exp", "show", "--json", *args.dvc_args], check=True, capture_output=True,
                           text=True).stdout
    rows = []
    for name, params, s in _runs(json.loads(shown)):
        gen = (f"{s['gen.fid']:.2f} | {s['gen.diversity']:.2f} | {s['gen.multimodality']:.2f} | "
               f"{100 * s['gen.recognition_accuracy']:.1f}") if "gen.fid" in s else "- | - | - | -"
        gen += (f" | {s['gen.speed']:.2f} ({s['gen.real.speed']:.2f}) | "
                f"{s['gen.acceleration']:.1f} ({s['gen.real.acceleration']:.1f})") if "gen.speed" in s else " | - | -"
        rows.append((_label(params), name, 100 * s["top1.median"], 100 * s["top1.mean"], 100 * s["top1.std"], gen))
    rows.sort(key=lambda row: ROW_ORDER.index(row[0]))
    print("| method | experiment | median top-1 (%) | mean +- std (%) | FID | diversity | multimodality | "
          "recognised (%) | speed m/s (real) | acceleration m/s2 (real) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, name, median, mean, std, gen in rows:
        print(f"| {label} | {name} | {median:.1f} | {mean:.1f} +- {std:.1f} | {gen} |")
    if rows:
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(rows) + 1), dpi=100)
        ax.barh([r[0] for r in rows], [r[2] for r in rows], xerr=[r[4] for r in rows], color="#4c72b0")
        ax.set_xlabel("median top-1 accuracy over seeds (%), error bar: std")
        ax.invert_yaxis()
        fig.tight_layout()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, metadata={"Software": None})
        print(f"\nbar chart: {args.out}")


if __name__ == "__main__":
    main()
