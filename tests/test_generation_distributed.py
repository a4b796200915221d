"""Generation split across processes (generate.nproc): CPU, gloo, 2 processes under torchrun, a tiny student.

The 2-process stage run happens once per module: this file is also the worker torchrun starts
(`python -m torch.distributed.run ... -m tests.test_generation_distributed <record> <stage args>`), each rank
recording the files it writes to `<record>/rank<r>.json` before running the `generate` stage's main() as the stage's
own relaunch would.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from kinemic.diffusion import AncestralSampler, GaussianDiffusion, ScheduleSampler, run_sampler, standard_normal
from kinemic.distributed import World, batch_share
from kinemic.generation import GenerateConfig, generate_synthetic
from kinemic.models.mdm import MDM
from kinemic.motion import FeatureStats
from kinemic.samplers import DDIMSampler, make_sampler
from kinemic.sampling import SampleRequest, _noise_steps, _skip_draws, batch_count, sample_motions
from kinemic.student import StudentCheckpoint, merged_model, with_actions
from kinemic.target_set import PreparedTarget
from tests.test_distributed import run_two_ranks

CLASSES = ["wave", "kick"]
# 2 classes x 9 motions in batches of 4: 5 batches (4, 4, 4, 4, 2), 3 for rank 0 and 2 for rank 1, each batch
# padded to its own longest length (a masked model), so the skipped draws have several shapes.
GENERATE = {"samples_per_class": 9, "batch_size": 4, "sampling_steps": 3, "sampler": "ancestral", "seed": 5,
            "device": "cpu", "previews_per_class": 1, "composition_class": "", "guidance": 2.0}


def _tiny_model() -> MDM:
    torch.manual_seed(0)
    return MDM(latent_dim=32, ff_size=64, num_layers=1, num_heads=2, text_dim=16, mask_frames=True).eval()


def _student() -> StudentCheckpoint:
    model = merged_model(with_actions(_tiny_model(), len(CLASSES), seed=1))
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.full(263, 0.5, np.float32))
    prompts = np.random.default_rng(0).normal(size=(len(CLASSES), 16)).astype(np.float32)
    return StudentCheckpoint(model, "kinemic", list(CLASSES), [f"a person does a {c}" for c in CLASSES], prompts,
                             stats, 20, "cosine", 40, {"encoder": "minilm", "options": {}, "normalize": True}, {})


def _target() -> PreparedTarget:
    """Two few-shot clips per class, of several lengths (generation draws its lengths from them)."""
    lengths = [12, 20, 16, 30]
    rows, offset = [], 0
    for i, length in enumerate(lengths):
        c = i // 2
        rows.append((f"S{i:03d}", 1, 1, i, 1, c + 1, c, CLASSES[c], CLASSES[c], "fewshot", offset, length))
        offset += length
    samples = pd.DataFrame(rows, columns=["sample_id", "setup", "camera", "performer", "replication", "action",
                                          "class_index", "class_name", "caption", "split", "offset", "length"])
    rng = np.random.default_rng(1)
    return PreparedTarget(rng.normal(size=(offset, 263)).astype(np.float32),
                          rng.normal(size=(offset, 22, 3)).astype(np.float32), samples)


def _stage_args(root: Path, params: Path, out: str) -> list[str]:
    return ["--params", str(params), "--student", str(root / "student"), "--target", str(root / "target"),
            "--out", str(root / out / "generated"), "--plots", str(root / out / "plots"),
            "--metrics", str(root / out / "generate.json")]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def _worker(record: Path, argv: list[str]) -> None:
    """One rank of the 2-process stage run, recording every output file it writes and what generation
    returned to it."""
    import kinemic.io
    import stages.generate

    writes: list[str] = []
    atomic, write_json = kinemic.io.atomic_output_dir, kinemic.io.write_json

    def recording_atomic(path, *args, **kwargs):
        writes.append(f"dir {path}")
        return atomic(path, *args, **kwargs)

    def recording_write_json(path, *args, **kwargs):
        writes.append(f"json {path}")
        return write_json(path, *args, **kwargs)

    generate, returned = stages.generate.generate_synthetic, []

    def recording_generate(*args, **kwargs):
        synthetic = generate(*args, **kwargs)
        returned.append(None if synthetic is None else len(synthetic))
        return synthetic

    stages.generate.atomic_output_dir = recording_atomic
    stages.generate.write_json = recording_write_json
    stages.generate.generate_synthetic = recording_generate
    stages.generate.main(argv)
    rank = int(os.environ["RANK"])
    (record / f"rank{rank}.json").write_text(json.dumps({"writes": writes, "threads": torch.get_num_threads(),
                                                         "returned": returned}))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The generate stage on the tiny student, once in one process and once in two under torchrun."""
    root = tmp_path_factory.mktemp("generate")
    _student().save(root / "student" / "student.pt")
    _target().save(root / "target")
    for nproc in (1, 2):
        params = {"generate": {**GENERATE, "nproc": nproc}, "runtime": {"threads": 1}}
        (root / f"p{nproc}").mkdir()
        (root / f"p{nproc}" / "params.yaml").write_text(yaml.safe_dump(params))
    cwd = os.getcwd()
    try:
        import stages.generate

        stages.generate.main(_stage_args(root, root / "p1" / "params.yaml", "one"))
    finally:
        os.chdir(cwd)
    record = root / "record"
    record.mkdir()
    run_two_ranks("tests.test_generation_distributed", str(record),
                  *_stage_args(root, root / "p2" / "params.yaml", "two"))
    return root


@pytest.mark.slow
def test_two_processes_write_the_bytes_of_one(runs):
    one, two = _hashes(runs / "one"), _hashes(runs / "two")
    assert "generated/synthetic.npz" in one and "generated/fewshot_plus_synthetic.pkl" in one
    assert sorted(one) == sorted(two)
    differing = sorted(path for path in one if one[path] != two[path])
    assert not differing, f"1 vs 2 processes: {differing} differ"
    facts = json.loads((runs / "p2" / "runs" / "generate.json").read_text())
    assert facts["processes"] == 2 and json.loads((runs / "p1" / "runs" / "generate.json").read_text())[
        "processes"] == 1


@pytest.mark.slow
def test_rank_zero_alone_writes(runs):
    main, other = (json.loads((runs / "record" / f"rank{r}.json").read_text()) for r in range(2))
    assert other["writes"] == []
    assert [w.split()[0] for w in main["writes"]] == ["dir", "dir", "json"]
    assert other["threads"] == main["threads"] == 1  # each rank keeps runtime.threads (the bytes may depend on it)
    assert main["returned"] == [18] and other["returned"] == [None]  # the shares are gathered on rank 0 only


# ------------------------------------------------------------------------------------------ in one process


def _sampler(name: str, diffusion: GaussianDiffusion) -> ScheduleSampler:
    """A sampler of 4 steps by name; 'ddim_eta' is DDIM with eta > 0, which draws noise at every step."""
    return DDIMSampler(diffusion, 4, eta=0.5) if name == "ddim_eta" else make_sampler(name, diffusion, 4)


@pytest.mark.parametrize("sampler", ["ancestral", "ddim", "dpmpp_2m", "ddim_eta"])
def test_a_share_of_the_batches_is_sampled_as_in_the_whole_run(sampler, one_thread):
    model = _tiny_model()
    stats = FeatureStats(mean=np.zeros(263, np.float32), std=np.ones(263, np.float32))
    lengths = np.array([12, 20, 16, 30, 9, 14, 25])
    text = np.random.default_rng(0).normal(size=(len(lengths), 16)).astype(np.float32)
    request = SampleRequest(lengths=lengths, text_emb=text)
    diffusion = GaussianDiffusion(20, "cosine")

    def draw(batches=None):
        return sample_motions(model, diffusion, stats, request, batch_size=2, seed=3,
                              sampler=_sampler(sampler, diffusion), batches=batches).features

    whole = draw()
    assert batch_count(len(lengths), 2) == 4
    for share in ([0], [1, 3], [2], [3]):
        part = draw(share)
        expected = [f for i, f in enumerate(whole) if i // 2 in share]
        assert len(part) == len(expected)
        for got, want in zip(part, expected, strict=True):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="increasing indices"):
        draw([3, 1])
    with pytest.raises(ValueError, match="increasing indices"):
        draw([4])


@pytest.mark.parametrize(("sampler", "noisy_steps"), [("ancestral", 4), ("ddim", 0), ("dpmpp_2m", 0), ("ddim_eta", 4)])
def test_a_skipped_batch_makes_its_draws_and_nothing_else(sampler, noisy_steps):
    """The skip leaves the generator where a whole sampling run with a zero denoiser leaves it, from the draws alone:
    it is given which steps draw noise, not the sampler, so it runs no sampler step on the batch."""
    built = _sampler(sampler, GaussianDiffusion(20, "cosine"))
    shape = (3, 17, 263)
    ran, skipped = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    run_sampler(built, lambda x, t: torch.zeros_like(x), shape, ran, device="cpu")
    steps = _noise_steps(built)
    assert len(steps) == 4 and sum(steps) == noisy_steps
    _skip_draws(steps, shape, skipped)
    assert torch.equal(skipped.get_state(), ran.get_state())


def test_a_sampler_drawing_other_noise_cannot_be_skipped():
    class TwiceNoisy(AncestralSampler):
        def step(self, x0_pred, t_index, x_t, noise=None, generator=None):
            standard_normal(x_t.shape, generator, x_t.device, x_t.dtype)
            return super().step(x0_pred, t_index, x_t, noise, generator)

    with pytest.raises(RuntimeError, match="other than one standard normal"):
        _noise_steps(TwiceNoisy(GaussianDiffusion(20, "cosine"), 4))


def test_batch_shares_cover_the_batches_in_order():
    for batches in range(0, 9):
        for size in (1, 2, 3, 4):
            shares = [batch_share(batches, World(rank, size)) for rank in range(size)]
            assert [b for share in shares for b in share] == list(range(batches))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_generate_spacing_picks_the_steps(one_thread):
    """generate.spacing reaches the sampler: 'official' is the ancestral default itself, 'high_noise' other steps."""
    student, target = _student(), _target()

    def features(**changes) -> list[bytes]:
        config = GenerateConfig(**{**GENERATE, "samples_per_class": 2, **changes})
        return [f.tobytes() for f in generate_synthetic(student, target, config).features]

    default = features()
    assert features(spacing="official") == default
    assert features(spacing="high_noise") != default
    with pytest.raises(ValueError, match="generate.spacing must be 'default' or one of"):
        GenerateConfig(spacing="quad")


def test_nproc_is_validated():
    from kinemic.generation import GenerateConfig

    with pytest.raises(ValueError, match="generate.nproc"):
        GenerateConfig(nproc=0)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), sys.argv[2:])
