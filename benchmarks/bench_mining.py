"""Benchmark: embed a HumanML3D-sized caption corpus with the offline MiniLM encoder on the CPU, then mine top-k soft
positives for the 120 NTU RGB+D 120 classes.

    .venv/bin/python benchmarks/bench_mining.py                    # 45,000 captions, 120 classes, k = 250
    .venv/bin/python benchmarks/bench_mining.py --captions 5000    # a quick run
    .venv/bin/python benchmarks/bench_mining.py --clip 1000        # also CLIP ViT-B/32 speed (random weights)

Captions are synthesised from templates (HumanML3D: 44,970 captions of 14,616 motions, ~3 per motion). Class names come
from `../shared/data/ntu_metadata.json` when present, else from templates. Prints timings; writes nothing outside a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from kinemic.mining import MiningConfig, build_prompts, mine_soft_pairs, mining_metrics  # noqa: E402
from kinemic.text import EmbeddingCache, MiniLMConfig, MiniLMEncoder, encode_cached  # noqa: E402

SUBJECTS = ["a person", "a man", "a woman", "someone", "the person", "a figure", "the man", "a human", "the woman"]
ACTIONS = [
    "walks forward", "walks backwards", "walks in a circle", "runs forward", "jogs in place", "runs on the spot",
    "jumps up and down", "jumps forward", "hops on the left foot", "hops on the right foot", "kicks with the right leg",
    "kicks with the left leg", "does a side kick", "throws a punch", "punches the air with both fists",
    "waves the right hand", "waves the left hand", "raises both arms", "stretches both arms above the head",
    "bends down to pick something up", "squats down", "sits down", "stands up from a chair", "turns around",
    "spins in place", "dances", "practices martial arts", "does jumping jacks", "claps the hands", "throws a ball",
    "catches something", "climbs stairs", "walks down the stairs", "crawls on the floor", "stumbles and falls",
    "lifts something heavy", "pushes something", "pulls a rope", "swings a golf club", "plays the violin",
    "drinks from a cup", "looks around", "shakes the head", "nods", "bows", "salutes", "steps to the left",
    "steps to the right", "lunges forward", "stretches the legs", "rotates the arms", "balances on one leg",
]
DIRECTIONS = ["forward", "backward", "to the left", "to the right", "diagonally", "in a circle", "sideways"]
MANNERS = ["", "", "slowly", "quickly", "twice", "three times", "while looking around", "with energy", "carefully",
           "in a hurry", "and then stops", "and returns to the start"]


def synth_captions(num_captions: int, captions_per_motion: int = 3, seed: int = 0) -> pd.DataFrame:
    """`num_captions` varied captions (nearly all distinct, as in HumanML3D) of `num_captions / captions_per_motion`
    motions: one to three clauses, a manner and sometimes a step count (motion_id, caption)."""
    rng = np.random.default_rng(seed)
    captions = []
    for _ in range(num_captions):
        clauses = [ACTIONS[rng.integers(len(ACTIONS))] for _ in range(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))]
        if rng.random() < 0.3:
            clauses.insert(rng.integers(len(clauses) + 1), f"takes {rng.integers(2, 9)} steps {rng.choice(DIRECTIONS)}")
        joined = clauses[0]
        for clause in clauses[1:]:
            joined += f"{rng.choice([', then', ' and then', ' before it', ' and', ', after that it'])} {clause}"
        manner = MANNERS[rng.integers(len(MANNERS))]
        captions.append(f"{SUBJECTS[rng.integers(len(SUBJECTS))]} {joined}{' ' + manner if manner else ''}.")
    motion_ids = [f"{i // captions_per_motion:06d}" for i in range(num_captions)]
    return pd.DataFrame({"motion_id": motion_ids, "caption": captions})


def class_names(num_classes: int) -> list[str]:
    shared = Path(os.environ.get("KINEMIC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    metadata = shared / "data" / "ntu_metadata.json"
    names: list[str] = []
    if metadata.is_file():
        names = list(dict.fromkeys(a["action"] for a in json.loads(metadata.read_text())["actions"]))
    names += [f"{action} variant {i}" for i, action in enumerate(ACTIONS * 3)]
    return names[:num_classes]


def timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"{label:<58s} {seconds:8.2f} s")
    return result, seconds


def _padded(model: torch.nn.Module, texts: list[str]) -> None:
    from kinemic.text import tokenize

    with torch.inference_mode():
        for start in range(0, len(texts), 256):
            model.encode_text(tokenize(texts[start : start + 256]))


def bench_clip(num_captions: int, captions: list[str]) -> None:
    """CLIP ViT-B/32 text speed with random weights (speed does not depend on the weights' values): exact-length
    batches at contexts 77 and 22 against the plain forward padded to 77 tokens."""
    import open_clip

    from kinemic.text import CLIPConfig, CLIPEncoder

    texts = captions[:num_captions]
    with tempfile.TemporaryDirectory() as folder:
        model = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True).eval()
        path = Path(folder) / "random_clip.pt"
        torch.save(model.state_dict(), path)
        _, seconds = timed(f"CLIP encode {len(texts)} captions, padded to 77 (open_clip)", _padded, model, texts)
        print(f"{'':<58s} {len(texts) / seconds:8.0f} captions/s")
        del model
        for length in (77, 22):
            encoder = CLIPEncoder(CLIPConfig(weights=str(path), context_length=length))
            encoder.encode(texts[:8])  # load
            _, seconds = timed(f"CLIP encode {len(texts)} captions, context {length}, exact length",
                               encoder.encode, texts)
            print(f"{'':<58s} {len(texts) / seconds:8.0f} captions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=45_000)
    parser.add_argument("--classes", type=int, default=120)
    parser.add_argument("--k", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--clip", type=int, default=0, help="also time CLIP on this many captions (random weights)")
    args = parser.parse_args()

    print(f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cpus")
    captions = synth_captions(args.captions)
    names = class_names(args.classes)
    print(f"{len(captions)} captions ({captions['caption'].nunique()} distinct) of "
          f"{captions['motion_id'].nunique()} motions; {len(names)} classes; k = {args.k}")

    encoder = MiniLMEncoder(MiniLMConfig(batch_size=args.batch_size))
    timed("MiniLM load (first encode)", encoder.encode, ["warm up"])
    texts = captions["caption"].tolist()
    caption_emb, seconds = timed(f"MiniLM encode {len(texts)} captions (CPU)", encoder.encode, texts)
    print(f"{'':<58s} {len(texts) / seconds:8.0f} captions/s")

    with tempfile.TemporaryDirectory() as folder:
        cache = EmbeddingCache(folder)
        # MiniLM's raw output is already unit-norm (its last layer normalises), so these are its raw embeddings.
        timed("cache: store raw embeddings (one shard)", cache.add, encoder, texts, caption_emb)
        cached, _ = timed("cache: encode_cached, all hits (new cache instance)", encode_cached, encoder, texts,
                          EmbeddingCache(folder))
        assert np.allclose(cached, caption_emb, atol=1e-6)

    config = MiningConfig(k=args.k)
    prompts = build_prompts(names, config.prompt_template)
    prompts_emb, _ = timed(f"MiniLM encode {len(prompts)} prompts", encoder.encode, prompts)
    class_ids = list(range(1, len(names) + 1))
    pairs, _ = timed(f"mine top-{args.k} motions for {len(names)} classes", mine_soft_pairs, class_ids, names,
                     prompts_emb, captions, caption_emb, config)
    caption_config = MiningConfig(k=args.k, granularity="caption")
    timed(f"mine top-{args.k} captions for {len(names)} classes", mine_soft_pairs, class_ids, names, prompts_emb,
          captions, caption_emb, caption_config)
    metrics, _ = timed("mining metrics", mining_metrics, pairs)
    print(f"pairs: {len(pairs)} rows; similarity mean {metrics['similarity_mean']:.3f}, "
          f"min {metrics['similarity_min']:.3f}; distinct motions {metrics['distinct_motions']}; "
          f"jaccard mean {metrics['jaccard_mean']:.3f}")

    if args.clip:
        bench_clip(args.clip, texts)


if __name__ == "__main__":
    main()
