"""Soft-positive mining on small seeded embeddings, checked against brute-force references."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kinemic.mining import (
    PAIR_COLUMNS,
    MiningConfig,
    build_prompts,
    format_top_captions,
    mine_soft_pairs,
    mining_metrics,
    motion_embeddings,
    overlap_matrix,
    top_k,
)

CLASS_IDS = [104, 99, 102]
CLASS_NAMES = ["stretch oneself", "running on the spot", "side kick"]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def corpus(rng):
    """60 motions with 1-4 captions each (ids not in row order), 8-d caption and prompt embeddings."""
    counts = rng.integers(1, 5, size=60)
    motion_ids = np.repeat([f"{i:06d}" for i in rng.permutation(60)], counts)
    captions = pd.DataFrame({"motion_id": motion_ids, "caption": [f"caption {i}" for i in range(len(motion_ids))]})
    return captions, _unit(rng.normal(size=(len(captions), 8))), _unit(rng.normal(size=(3, 8)))


def _brute_force_motion(captions, caption_emb, prompts_emb, k):
    """Per class: (motion ids, similarities, best captions) by full sorting, with pandas groupby averaging."""
    frame = pd.DataFrame(_unit(caption_emb)).assign(motion_id=captions["motion_id"].to_numpy())
    means = frame.groupby("motion_id").mean()
    motions = _unit(means.to_numpy())
    out = []
    for prompt in prompts_emb:
        sims = motions @ prompt
        order = np.lexsort((np.arange(len(sims)), -sims))[:k]
        best = []
        for motion in means.index[order]:
            rows = np.flatnonzero(captions["motion_id"].to_numpy() == motion)
            best.append(captions["caption"].iloc[rows[np.argmax(caption_emb[rows] @ prompt)]])
        out.append((means.index[order].tolist(), sims[order], best))
    return out


def test_build_prompts_and_errors():
    assert build_prompts(["side kick"]) == ["a person performs a side kick."]
    assert build_prompts(["jump"], "{label} {x}") == ["jump {x}"]
    with pytest.raises(ValueError, match=r"must contain '\{label\}'"):
        build_prompts(["jump"], "a person performs a {}.")
    with pytest.raises(ValueError, match="class_names is empty"):
        build_prompts([], "a {label}")
    with pytest.raises(ValueError, match=r"duplicate class names \['jump'\]"):
        build_prompts(["jump", "walk", "jump"], "a {label}")
    with pytest.raises(ValueError, match=r"class_names\[1\]"):
        build_prompts(["jump", " "], "a {label}")


def test_config_validation():
    assert MiningConfig() == MiningConfig(k=250, prompt_template="a person performs a {label}.",
                                          granularity="motion", encoder="minilm")
    with pytest.raises(ValueError, match="k=0"):
        MiningConfig(k=0)
    with pytest.raises(ValueError, match=r"granularity='clip'.*\('motion', 'caption'\)"):
        MiningConfig(granularity="clip")
    with pytest.raises(ValueError, match="encoder='bert'.*minilm"):
        MiningConfig(encoder="bert")
    with pytest.raises(ValueError, match="label"):
        MiningConfig(prompt_template="a person performs")
    with pytest.raises(TypeError):
        MiningConfig(topk=5)


@pytest.mark.parametrize("k", [1, 7, 40])
def test_top_k_matches_full_sort_with_ties(rng, k):
    similarity = np.round(rng.uniform(-1, 1, size=(9, 40)), 1).astype(np.float32)  # many exact ties
    index, values = top_k(similarity, k)
    reference = np.stack([np.lexsort((np.arange(40), -row))[:k] for row in similarity])
    np.testing.assert_array_equal(index, reference)
    np.testing.assert_array_equal(values, np.take_along_axis(similarity, reference, axis=1))
    with pytest.raises(ValueError, match="k=41 must be between 1 and the number of candidates, 40"):
        top_k(similarity, 41)
    similarity[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        top_k(similarity, k)


def test_motion_embeddings_average_then_renormalise():
    ids, emb, codes = motion_embeddings(["b", "a", "b"], np.array([[2.0, 0.0], [0.0, 5.0], [0.0, 1.0]]))
    assert ids.tolist() == ["a", "b"] and codes.tolist() == [1, 0, 1]
    np.testing.assert_allclose(emb, [[0.0, 1.0], [np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-6)


def test_mine_motion_granularity_matches_brute_force(corpus):
    captions, caption_emb, prompts_emb = corpus
    pairs = mine_soft_pairs(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb, MiningConfig(k=10))
    assert list(pairs.columns) == list(PAIR_COLUMNS) and len(pairs) == 30
    assert pairs["class_id"].tolist() == [99] * 10 + [102] * 10 + [104] * 10  # sorted by class, then rank
    assert pairs["rank"].tolist() == list(range(10)) * 3
    expected = _brute_force_motion(captions, caption_emb, prompts_emb, 10)
    for class_index, class_id in enumerate(CLASS_IDS):
        mined = pairs[pairs["class_id"] == class_id]
        motions, sims, best = expected[class_index]
        assert mined["motion_id"].tolist() == motions
        np.testing.assert_allclose(mined["similarity"], sims, atol=1e-6)
        assert mined["caption"].tolist() == best
        assert mined["prompt"].iloc[0] == f"a person performs a {CLASS_NAMES[class_index]}."
        assert mined["motion_id"].is_unique


def test_mine_caption_granularity_matches_brute_force(corpus):
    captions, caption_emb, prompts_emb = corpus
    config = MiningConfig(k=12, granularity="caption")
    pairs = mine_soft_pairs(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb, config)
    for class_index, class_id in enumerate(CLASS_IDS):
        sims = caption_emb @ prompts_emb[class_index]
        order = np.argsort(-sims, kind="stable")[:12]
        mined = pairs[pairs["class_id"] == class_id]
        assert mined["caption"].tolist() == captions["caption"].iloc[order].tolist()
        assert mined["motion_id"].tolist() == captions["motion_id"].iloc[order].tolist()
        np.testing.assert_allclose(mined["similarity"], sims[order], atol=1e-6)


def test_mining_is_deterministic_and_ignores_row_order(corpus, rng):
    captions, caption_emb, prompts_emb = corpus
    config = MiningConfig(k=15)
    pairs = mine_soft_pairs(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb, config)
    pd.testing.assert_frame_equal(pairs, mine_soft_pairs(CLASS_IDS, CLASS_NAMES, prompts_emb, captions,
                                                         caption_emb, config))
    shuffle = rng.permutation(len(captions))
    shuffled = mine_soft_pairs(CLASS_IDS[::-1], CLASS_NAMES[::-1], prompts_emb[::-1],
                               captions.iloc[shuffle].reset_index(drop=True), caption_emb[shuffle], config)
    pd.testing.assert_frame_equal(pairs, shuffled, atol=1e-6)


def test_exact_match_ranks_first_and_raw_embeddings_are_normalised(corpus):
    captions, caption_emb, prompts_emb = corpus
    prompts = caption_emb[[5, 17, 30]] * 7.0  # unnormalised, like raw CLIP output
    pairs = mine_soft_pairs(CLASS_IDS, CLASS_NAMES, prompts, captions, caption_emb * 3.0,
                            MiningConfig(k=3, granularity="caption"))
    firsts = pairs[pairs["rank"] == 0].set_index("class_id")
    assert firsts.loc[104, "caption"] == "caption 5" and firsts.loc[102, "caption"] == "caption 30"
    np.testing.assert_allclose(firsts["similarity"], 1.0, atol=1e-6)


def test_pairs_parquet_round_trip(corpus, tmp_path):
    captions, caption_emb, prompts_emb = corpus
    pairs = mine_soft_pairs(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb, MiningConfig(k=5))
    assert pairs["rank"].dtype == np.int64 and pairs["similarity"].dtype == np.float64
    assert pairs["class_id"].dtype == np.int64
    path = tmp_path / "soft_pairs.parquet"
    pairs.to_parquet(path, index=False)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, pairs)
    assert back.dtypes.to_dict() == pairs.dtypes.to_dict()


def test_mine_errors_name_the_bad_value(corpus):
    captions, caption_emb, prompts_emb = corpus
    mine = mine_soft_pairs
    with pytest.raises(ValueError, match="k=61 but only 60 motions.*k <= 60"):
        mine(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb, MiningConfig(k=61))
    n = len(captions)
    with pytest.raises(ValueError, match=f"k={n + 1} but only {n} captions"):
        mine(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb, MiningConfig(k=n + 1, granularity="caption"))
    with pytest.raises(ValueError, match="class_names is empty"):
        mine([], [], prompts_emb[:0], captions, caption_emb, MiningConfig(k=5))
    with pytest.raises(ValueError, match="duplicate class names"):
        mine(CLASS_IDS, ["a", "b", "a"], prompts_emb, captions, caption_emb, MiningConfig(k=5))
    with pytest.raises(ValueError, match=r"duplicate class_ids \[99\]"):
        mine([99, 99, 1], CLASS_NAMES, prompts_emb, captions, caption_emb, MiningConfig(k=5))
    with pytest.raises(ValueError, match="2 class_ids but 3 class_names"):
        mine(CLASS_IDS[:2], CLASS_NAMES, prompts_emb, captions, caption_emb, MiningConfig(k=5))
    bad = caption_emb.copy()
    bad[[4, 9]] = np.nan
    with pytest.raises(ValueError, match="caption_emb has 2 rows with NaN/inf values \\(first: row 4\\)"):
        mine(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, bad, MiningConfig(k=5))
    with pytest.raises(ValueError, match="dimension 4 but the prompt embeddings have 8"):
        mine(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb[:, :4], MiningConfig(k=5))
    with pytest.raises(ValueError, match=rf"caption_emb has shape \({n - 1}, 8\); expected \({n}, D\)"):
        mine(CLASS_IDS, CLASS_NAMES, prompts_emb, captions, caption_emb[1:], MiningConfig(k=5))
    with pytest.raises(ValueError, match=r"prompts_emb has shape \(2, 8\); expected \(3, D\)"):
        mine(CLASS_IDS, CLASS_NAMES, prompts_emb[:2], captions, caption_emb, MiningConfig(k=5))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['caption'\]"):
        mine(CLASS_IDS, CLASS_NAMES, prompts_emb, captions[["motion_id"]], caption_emb, MiningConfig(k=5))
    zero = prompts_emb.copy()
    zero[1] = 0
    with pytest.raises(ValueError, match="prompts_emb row 1 is all zeros"):
        mine(CLASS_IDS, CLASS_NAMES, zero, captions, caption_emb, MiningConfig(k=5))


def _hand_pairs() -> pd.DataFrame:
    """Class 1 mined motions {a, b, c}, class 2 mined {c, d}: one shared motion."""
    return pd.DataFrame(
        {
            "class_id": [1, 1, 1, 2, 2],
            "class_name": ["side kick"] * 3 + ["Side-Kick!"] * 2,
            "prompt": ["p1"] * 3 + ["p2"] * 2,
            "rank": [0, 1, 2, 0, 1],
            "motion_id": ["a", "b", "c", "c", "d"],
            "caption": ["ca", "cb", "cc", "cc", "cd"],
            "similarity": [0.9, 0.8, 0.5, 0.7, 0.6],
        }
    )


def test_mining_metrics_are_flat_and_correct():
    metrics = mining_metrics(_hand_pairs())
    json.dumps(metrics)
    assert all(isinstance(value, (int, float)) for value in metrics.values())
    assert metrics["num_classes"] == 2 and metrics["k"] == 3 and metrics["distinct_motions"] == 4
    assert metrics["jaccard_mean"] == pytest.approx(0.25) and metrics["jaccard_max"] == pytest.approx(0.25)
    assert metrics["shared_motion_fraction"] == pytest.approx(0.25)
    # Both names slugify to 'side_kick': the class id tells them apart.
    assert metrics["side_kick_1/similarity_mean"] == pytest.approx(2.2 / 3)
    assert metrics["side_kick_1/similarity_min"] == pytest.approx(0.5)
    assert metrics["side_kick_1/distinct_motions"] == 3
    assert metrics["side_kick_1/shared_fraction"] == pytest.approx(1 / 3)
    assert metrics["side_kick_2/shared_fraction"] == pytest.approx(0.5)
    assert metrics["side_kick_2/jaccard_max"] == pytest.approx(0.25)
    np.testing.assert_allclose(overlap_matrix(_hand_pairs()).to_numpy(), [[1.0, 0.25], [0.25, 1.0]])


def test_mining_metrics_single_class_and_bad_input():
    metrics = mining_metrics(_hand_pairs().iloc[:3])
    assert metrics["jaccard_max"] == 0.0 and metrics["shared_motion_fraction"] == 0.0
    with pytest.raises(ValueError, match=r"missing columns \['similarity'\]"):
        mining_metrics(_hand_pairs().drop(columns="similarity"))


def test_format_top_captions():
    text = format_top_captions(_hand_pairs(), n=2)
    lines = text.splitlines()
    assert lines[0] == "[1] side kick: 'p1'" and len(lines) == 6
    assert "0.900" in lines[1] and "ca" in lines[1] and "cc" not in text.split("[2]")[0]
    with pytest.raises(ValueError, match="n=0"):
        format_top_captions(_hand_pairs(), n=0)


def test_extra_templates_average_the_class_query():
    """Prompt augmentation: the query is the normalised mean of every template's prompt embedding; none: the prompt."""
    from kinemic.mining import MiningConfig, class_queries

    def embed(texts):
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, 0] = 1.0
            out[i, 1 + ("someone" in text)] = 1.0
            out[i, 3] = len(text) % 3
        return out

    names = ["side kick", "run"]
    single = class_queries(embed, names, MiningConfig())
    np.testing.assert_array_equal(single, embed(["a person performs a side kick.", "a person performs a run."]))
    both = class_queries(embed, names, MiningConfig(extra_templates=("someone does a {label}",)))
    mean = (embed(["a person performs a side kick."]) + embed(["someone does a side kick"])) / 2
    np.testing.assert_allclose(both[0], (mean / np.linalg.norm(mean))[0], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="label"):
        MiningConfig(extra_templates=("no placeholder",))
