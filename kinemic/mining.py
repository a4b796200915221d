"""Soft-positive mining (paper section 4.1): for each target class, the k prior motions whose captions are closest to
the class prompt ("a person performs a side kick.") in a text-embedding space.

As the authors' code (reference/mdm_kinemic.md section 7.6): caption embeddings are L2-normalised, averaged per motion
and re-normalised ('motion' granularity), and the top-k motions by cosine similarity are kept per class. 'caption'
granularity ranks captions instead (a motion can then appear once per matching caption), as the paper's text reads.

Top-k is exact: one matrix product per chunk of classes, the k-th largest similarity by `np.partition`, and ties at
the boundary and in the ordering broken by candidate index (motions in sorted `motion_id` order, captions in row order),
so the result never depends on a sort's tie handling.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kinemic.text import ENCODER_NAMES

GRANULARITIES = ("motion", "caption")
PAIR_COLUMNS = ("class_id", "class_name", "prompt", "rank", "motion_id", "caption", "similarity")
_CHUNK_ELEMENTS = 1 << 24  # similarity entries per class chunk (64 MiB of float32)


@dataclass(frozen=True)
class MiningConfig:
    """Soft-positive mining. Defaults follow the paper (k = 250, the authors' prompt, per-motion averaging); the
    encoder defaults to the offline MiniLM of the embedded default ('clip-vit-b32' is the paper's)."""

    k: int = 250
    prompt_template: str = "a person performs a {label}."
    granularity: str = "motion"
    encoder: str = "minilm"
    encoder_options: dict = field(default_factory=dict)  # e.g. {context_length: 77, weights: ...} for CLIP
    splits: tuple[str, ...] = ("train",)  # prior splits mined from: the motions the student may draw
    # Prompt augmentation (the paper's future work): more templates per class, e.g. "someone does a {label}". The
    # class query is the normalised mean of all its prompts' embeddings; empty: the single prompt, as the paper.
    extra_templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.k, numbers.Integral) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"mining k={self.k!r} must be a positive integer (the paper uses 250)")
        for template in (self.prompt_template, *self.extra_templates):
            _check_template(template)
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"mining granularity={self.granularity!r} is not valid; use one of {GRANULARITIES}")
        if self.encoder not in ENCODER_NAMES:
            raise ValueError(f"mining encoder={self.encoder!r} is not valid; use one of {ENCODER_NAMES}")


def _check_template(template: str) -> None:
    if "{label}" not in template:
        raise ValueError(
            f"prompt_template={template!r} must contain '{{label}}', where the class name goes "
            "(e.g. 'a person performs a {label}.')"
        )


def _check_class_names(class_names: Sequence[str]) -> list[str]:
    names = list(class_names)
    if not names:
        raise ValueError("class_names is empty; mining needs at least one target class")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"class_names[{i}]={name!r}; every class name must be a non-empty string")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate class names {duplicates}; each class needs its own name (and prompt)")
    return names


def build_prompts(class_names: Sequence[str], template: str = MiningConfig.prompt_template) -> list[str]:
    """One prompt per class: `template` with '{label}' replaced by the class name ("side kick" -> "a person performs a
    side kick."). Plain replacement, so other braces in the template are kept literally."""
    _check_template(template)
    return [template.replace("{label}", name) for name in _check_class_names(class_names)]


def class_queries(embed: Callable[[list[str]], np.ndarray], class_names: Sequence[str],
                  config: MiningConfig) -> np.ndarray:
    """(C, D) query embedding per class: its prompt's embedding, or with `extra_templates` the normalised mean of the
    embeddings of every template's prompt (prompt augmentation; the prompt column of the pairs stays the first)."""
    if not config.extra_templates:
        return embed(build_prompts(class_names, config.prompt_template))
    templates = (config.prompt_template, *config.extra_templates)
    mean = np.mean([np.asarray(embed(build_prompts(class_names, t)), dtype=np.float64) for t in templates], axis=0)
    return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)


def _check_embeddings(name: str, emb: np.ndarray, rows: int, dim: int | None = None) -> np.ndarray:
    """float32 (rows, D) with finite, non-zero rows, L2-normalised (cosine similarity is then a dot product)."""
    emb = np.asarray(emb)
    if emb.ndim != 2 or emb.shape[0] != rows:
        raise ValueError(f"{name} has shape {emb.shape}; expected ({rows}, D), one row per entry")
    if dim is not None and emb.shape[1] != dim:
        raise ValueError(
            f"{name} has dimension {emb.shape[1]} but the prompt embeddings have {dim}; "
            "embed prompts and captions with the same encoder"
        )
    emb = emb.astype(np.float32, copy=False)
    finite = np.isfinite(emb).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{name} has {bad.size} rows with NaN/inf values (first: row {bad[0]}); all must be finite")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} row {int(np.flatnonzero(norms[:, 0] == 0)[0])} is all zeros; it has no direction")
    return emb / norms


def top_k(similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k largest entries of `similarity` (R, M): indices (R, k) int64 and values (R, k), by decreasing
    value; equal values are taken and ordered by increasing index."""
    rows, width = similarity.shape
    if not 1 <= k <= width:
        raise ValueError(f"k={k} must be between 1 and the number of candidates, {width}")
    if not np.isfinite(similarity).all():
        raise ValueError("similarity holds NaN/inf values; top-k needs finite similarities")
    kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1 : k]  # (R, 1): the k-th largest value
    above = similarity > kth
    # Of the entries equal to the k-th value, keep the lowest-index ones that fill the k slots.
    at = similarity == kth
    needed = k - above.sum(axis=1, keepdims=True)
    keep = above | (at & (np.cumsum(at, axis=1) <= needed))
    index = np.nonzero(keep)[1].reshape(rows, k)  # row-major: ascending index within each row
    values = np.take_along_axis(similarity, index, axis=1)
    order = np.lexsort((index, -values), axis=1)  # by value descending, then index ascending
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(values, order, axis=1)


def motion_embeddings(motion_ids: Sequence, caption_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-motion embeddings as the authors build them: mean of the L2-normalised caption embeddings, re-normalised.

    Returns (unique motion ids in sorted order, embeddings (M, D) float32, codes (N,) mapping each caption to its
    motion's row).
    """
    caption_emb = np.asarray(caption_emb, dtype=np.float32)
    codes, uniques = pd.factorize(pd.Series(motion_ids), sort=True)
    normed = caption_emb / np.linalg.norm(caption_emb, axis=1, keepdims=True)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    sums = np.add.reduceat(normed[order], starts, axis=0)  # (M, D)
    means = sums / np.bincount(codes)[:, None]
    return np.asarray(uniques), means / np.linalg.norm(means, axis=1, keepdims=True), codes


def _captions_by_motion(codes: np.ndarray, num_motions: int) -> np.ndarray:
    """(M, max captions per motion) caption row indices in row order, padded with -1."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=num_motions)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    slot = np.arange(codes.size) - np.repeat(starts, counts)
    table = np.full((num_motions, counts.max()), -1, dtype=np.int64)
    table[codes[order], slot] = order
    return table


def mine_soft_pairs(
    class_ids: Sequence,
    class_names: Sequence[str],
    prompts_emb: np.ndarray,
    captions_df: pd.DataFrame,
    caption_emb: np.ndarray,
    config: MiningConfig,
) -> pd.DataFrame:
    """The top-k soft positives of each class, one row per (class, rank), sorted by class_id then rank.

    prompts_emb: (C, D) embeddings of `build_prompts(class_names, config.prompt_template)`.
    captions_df: at least `motion_id` and `caption`; caption_emb: (N, D), row i embeds captions_df row i.
    Columns: class_id, class_name, prompt, rank (0-based), motion_id, caption (for 'motion' granularity the motion's
    caption closest to the prompt), similarity (cosine, with the per-motion embedding for 'motion' granularity).
    """
    names = _check_class_names(class_names)
    class_ids = pd.Series(list(class_ids))
    if len(class_ids) != len(names):
        raise ValueError(f"{len(class_ids)} class_ids but {len(names)} class_names; give one id per name")
    if class_ids.duplicated().any():
        raise ValueError(f"duplicate class_ids {sorted(set(class_ids[class_ids.duplicated()]))}; ids must be unique")
    missing = [column for column in ("motion_id", "caption") if column not in captions_df.columns]
    if missing:
        raise ValueError(f"captions_df lacks column(s) {missing}; it has {list(captions_df.columns)}")
    if len(captions_df) == 0:
        raise ValueError("captions_df is empty; there is nothing to mine from")
    prompts = build_prompts(names, config.prompt_template)
    prompts_emb = _check_embeddings("prompts_emb", prompts_emb, len(names))
    caption_emb = _check_embeddings("caption_emb", caption_emb, len(captions_df), prompts_emb.shape[1])

    if config.granularity == "motion":
        _, candidates, codes = motion_embeddings(captions_df["motion_id"].to_numpy(), caption_emb)
        captions_of = _captions_by_motion(codes, len(candidates))
        unit = "motions"
    else:
        candidates, captions_of, unit = caption_emb, None, "captions"
    if config.k > len(candidates):
        raise ValueError(
            f"mining k={config.k} but only {len(candidates)} {unit} are available "
            f"(granularity={config.granularity!r}); choose k <= {len(candidates)}"
        )

    chunk = max(1, _CHUNK_ELEMENTS // max(len(candidates), len(caption_emb)))
    picked_rows, similarities = [], []
    for start in range(0, len(names), chunk):
        queries = prompts_emb[start : start + chunk]
        index, values = top_k(queries @ candidates.T, config.k)  # (c, k)
        if captions_of is not None:
            # The caption shown for a mined motion is its own caption closest to the prompt (first on ties).
            caption_sims = queries @ caption_emb.T  # (c, N)
            rows = captions_of[index]  # (c, k, max captions)
            gathered = np.take_along_axis(caption_sims[:, None, :], np.maximum(rows, 0), axis=2)
            sims = np.where(rows >= 0, gathered, -np.inf)
            index = np.take_along_axis(rows, sims.argmax(axis=2)[..., None], axis=2)[..., 0]
        picked_rows.append(index)
        similarities.append(values)
    picked = np.concatenate(picked_rows)  # (C, k) caption rows
    values = np.concatenate(similarities)

    class_order = np.argsort(class_ids.to_numpy(), kind="stable")
    rows = picked[class_order].ravel()
    repeat = np.repeat(class_order, config.k)
    pairs = pd.DataFrame(
        {
            "class_id": class_ids.iloc[repeat].reset_index(drop=True),
            "class_name": pd.Series(names).iloc[repeat].reset_index(drop=True),
            "prompt": pd.Series(prompts).iloc[repeat].reset_index(drop=True),
            "rank": np.tile(np.arange(config.k, dtype=np.int64), len(names)),
            "motion_id": captions_df["motion_id"].iloc[rows].reset_index(drop=True),
            "caption": captions_df["caption"].iloc[rows].reset_index(drop=True),
            "similarity": values[class_order].ravel().astype(np.float64),
        }
    )
    return pairs


def _slugs(class_names: Sequence[str], class_ids: Sequence) -> list[str]:
    """Metric-key-safe class names ('side kick' -> 'side_kick'); the class id is appended where two would collide."""
    slugs = [re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "class" for name in class_names]
    return [f"{slug}_{cid}" if slugs.count(slug) > 1 else slug for slug, cid in zip(slugs, class_ids, strict=True)]


def _membership(pairs: pd.DataFrame) -> np.ndarray:
    """(C, M) 0/1 matrix: class c (in order of first appearance) mined motion m."""
    class_codes = pd.factorize(pairs["class_id"])[0]
    motion_codes = pd.factorize(pairs["motion_id"])[0]
    member = np.zeros((class_codes.max() + 1, motion_codes.max() + 1), dtype=np.float64)
    member[class_codes, motion_codes] = 1.0
    return member


def _jaccard(member: np.ndarray) -> np.ndarray:
    inter = member @ member.T
    sizes = member.sum(axis=1)
    return inter / (sizes[:, None] + sizes[None, :] - inter)


def overlap_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """Jaccard index of the mined motion sets of every two classes (C, C), indexed by class name."""
    classes = pairs.drop_duplicates("class_id")["class_name"].tolist()
    return pd.DataFrame(_jaccard(_membership(pairs)), index=classes, columns=classes)


def mining_metrics(pairs: pd.DataFrame) -> dict[str, float | int]:
    """Flat, JSON-able numbers for `dvc metrics`: overall and per-class similarity of the top-k, distinct motions,
    and overlap between classes (Jaccard of motion sets; share of a class's motions also mined for another class).

    Keys: `num_classes`, `k`, `similarity_mean`, `similarity_min`, `distinct_motions`, `shared_motion_fraction`,
    `jaccard_mean`, `jaccard_max` (over pairs of classes; 0 with one class), and per class `<name>/similarity_mean`,
    `<name>/similarity_min`, `<name>/distinct_motions`, `<name>/shared_fraction`, `<name>/jaccard_max`, where <name>
    is the class name in snake case (with `_<class_id>` appended when two names collide).
    """
    missing = [column for column in PAIR_COLUMNS if column not in pairs.columns]
    if missing or len(pairs) == 0:
        raise ValueError(f"pairs must be a non-empty output of mine_soft_pairs; missing columns {missing}")
    firsts = pairs.drop_duplicates("class_id")
    slugs = _slugs(firsts["class_name"].tolist(), firsts["class_id"].tolist())
    stats = pairs.groupby("class_id", sort=False)["similarity"].agg(["mean", "min", "size"])
    member = _membership(pairs)  # rows in the same first-appearance order as `firsts` and `stats`
    shared = member.sum(axis=0) > 1  # (M,) motions mined for more than one class
    distinct = member.sum(axis=1)
    shared_fraction = (member @ shared) / distinct
    several = len(slugs) > 1
    jaccard = _jaccard(member)
    np.fill_diagonal(jaccard, np.nan)

    metrics: dict[str, float | int] = {
        "num_classes": len(slugs),
        "k": int(stats["size"].max()),
        "similarity_mean": float(pairs["similarity"].mean()),
        "similarity_min": float(pairs["similarity"].min()),
        "distinct_motions": int(member.shape[1]),
        "shared_motion_fraction": float(shared.mean()),
        "jaccard_mean": float(np.nanmean(jaccard)) if several else 0.0,
        "jaccard_max": float(np.nanmax(jaccard)) if several else 0.0,
    }
    for i, slug in enumerate(slugs):
        metrics[f"{slug}/similarity_mean"] = float(stats["mean"].iloc[i])
        metrics[f"{slug}/similarity_min"] = float(stats["min"].iloc[i])
        metrics[f"{slug}/distinct_motions"] = int(distinct[i])
        metrics[f"{slug}/shared_fraction"] = float(shared_fraction[i])
        metrics[f"{slug}/jaccard_max"] = float(np.nanmax(jaccard[i])) if several else 0.0
    return metrics


def format_top_captions(pairs: pd.DataFrame, n: int = 10) -> str:
    """Per class, its prompt and the top-n mined captions with similarity and motion id, for a person to eyeball."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    lines = []
    for class_id, group in pairs.groupby("class_id", sort=False):
        head = group.nsmallest(n, "rank")
        lines.append(f"[{class_id}] {head['class_name'].iloc[0]}: {head['prompt'].iloc[0]!r}")
        for row in head.itertuples(index=False):
            lines.append(f"  {row.rank:>4d}  {row.similarity:.3f}  {row.motion_id!s:>10}  {row.caption}")
    return "\n".join(lines)
