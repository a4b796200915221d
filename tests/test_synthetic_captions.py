"""Caption templates, HumanML3D tokens and text mirroring."""

from __future__ import annotations

import re

import numpy as np

from kinemic.synthetic.captions import mirror_text, phrase, sequence_caption, tokens
from kinemic.synthetic.primitives import PRIMITIVES, sample


def test_tokens_are_word_pos_pairs_lemmatised():
    toks = tokens("A man walks forward, then kicks sideways with the left leg.")
    assert all(re.fullmatch(r"[a-z]+/[A-Z]+", t) for t in toks)
    assert "walk/VERB" in toks and "kick/VERB" in toks and "left/ADJ" in toks and "leg/NOUN" in toks
    assert tokens("zorbs quickly")[1] == "quickly/ADV"  # unknown words get a default tag


def test_mirror_text_swaps_sides_and_directions():
    assert mirror_text("Left hand up, right leg out") == "Right hand up, left leg out"
    assert mirror_text("walks in a clockwise circle") == "walks in a counterclockwise circle"
    assert mirror_text("walks counterclockwise") == "walks clockwise"
    assert mirror_text("leftover brightness") == "leftover brightness"


def test_every_primitive_has_phrases_and_class_names_are_rare():
    rng = np.random.default_rng(0)
    texts = []
    for name in PRIMITIVES:
        for _ in range(40):
            texts.append(sequence_caption("a person", [phrase(name, sample(name, rng), rng)], rng))
    assert len(set(texts)) > 200
    lowered = [t.lower() for t in texts]
    for class_name in ("run on the spot", "side kick", "stretch oneself"):
        assert sum(class_name in t for t in lowered) < 0.05 * len(lowered)
