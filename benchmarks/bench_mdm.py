"""Benchmark: MDM denoising and training throughput, kinemic's MDM against a naive port of the official module.

Run on purpose (not a test):

    .venv/bin/python benchmarks/bench_mdm.py                      # ~2-3 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_mdm.py --reps 5 --sizes official --device cuda

Sampling: one guided denoising step (x0 prediction with classifier-free guidance, scale 2.5, then an ancestral step) for
a batch of 383 motions x 60 frames, the size of one class of the paper's synthetic set at a 3 s clip.
- ours: `kinemic.diffusion.classifier_free_guidance` (conditional and unconditional passes in ONE batch of 766) under
  `torch.inference_mode()`, batch-first, so `nn.TransformerEncoderLayer` takes its fused fast path;
- naive: the official module layout (seq-first transformer, (B, J, 1, T) motions), two separate guidance passes, under
  `torch.no_grad()` (as the official sampling loop; no inference_mode). It loads the same weights, and the two outputs
  are checked to agree before timing.
Training: one AdamW step (q_sample at uniform t, forward with text condition dropout, masked MSE, backward) for a batch
of 64 x 196 frames (HumanML3D's padded training length, the official batch size), for both implementations.

Paper set (`--paper-set`, on by default): the time to generate the paper's synthetic set (1,149 motions = 3 classes x
383, 60 frames) at the chosen size, with the fast sampler (`--sampler dpmpp_2m --steps 7 --spacing high_noise`,
generate's default) and with the official
sampler (ancestral, 100 steps), interleaved in the same run. Each is timed over `--set-steps` of its own visited steps
(the real loop: guided model call + sampler step, at the steps it really visits) for one class batch, and the set's
time is projected as mean step time x steps x batches; `--full-set` runs every step of every batch instead (for a GPU).

Sizes: 'embedded' (params.yaml's teacher: latent 128, ff 512, 4 layers, 4 heads, text 384 = the packaged MiniLM
encoder) and 'official' (512, 1024, 8 layers, 4 heads, text 512 = CLIP ViT-B/32). Each measurement is one warm-up then
`--reps` timed runs; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import Tensor, nn

from kinemic.diffusion import SPACINGS, GaussianDiffusion, classifier_free_guidance, masked_mse
from kinemic.models.mdm import MDM, MDMConfig
from kinemic.samplers import SAMPLERS, make_sampler

SIZES = {
    "embedded": MDMConfig(latent_dim=128, ff_size=512, num_layers=4, num_heads=4, text_dim=384),
    "official": MDMConfig(),
}


class NaiveMDM(nn.Module):
    """The official 2022 module layout, written plainly: seq-first encoder, motions as (B, J, 1, T), y-dict style flags.

    Same parameter names as the official (and kinemic's) MDM, so the same state dict loads into both.
    """

    def __init__(self, cfg: MDMConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.input_process = nn.Module()
        self.input_process.poseEmbedding = nn.Linear(cfg.njoints, d)
        self.sequence_pos_encoder = nn.Module()
        self.sequence_pos_encoder.register_buffer("pe", torch.zeros(cfg.max_len, 1, d))
        self.pos_dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(d, cfg.num_heads, cfg.ff_size, cfg.dropout, activation=cfg.activation)
        self.seqTransEncoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.embed_timestep = nn.Module()
        self.embed_timestep.sequence_pos_encoder = self.sequence_pos_encoder
        self.embed_timestep.time_embed = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.embed_text = nn.Linear(cfg.text_dim, d)
        self.output_process = nn.Module()
        self.output_process.poseFinal = nn.Linear(d, cfg.njoints)
        self.cond_mask_prob = cfg.cond_mask_prob

    def forward(self, x: Tensor, timesteps: Tensor, text: Tensor, uncond: bool = False) -> Tensor:
        bs, njoints, nfeats, nframes = x.shape
        pe = self.sequence_pos_encoder.pe
        emb = self.embed_timestep.time_embed(pe[timesteps]).permute(1, 0, 2)  # (1, B, D)
        if uncond:
            text = torch.zeros_like(text)
        elif self.training and self.cond_mask_prob > 0:
            keep = 1.0 - torch.bernoulli(torch.ones(bs, device=x.device) * self.cond_mask_prob).view(bs, 1)
            text = text * keep
        emb = emb + self.embed_text(text)
        h = self.input_process.poseEmbedding(x.permute(3, 0, 1, 2).reshape(nframes, bs, njoints * nfeats))  # (T, B, D)
        seq = self.pos_dropout(torch.cat([emb, h], dim=0) + pe[: nframes + 1])  # (T+1, B, D)
        out = self.output_process.poseFinal(self.seqTransEncoder(seq)[1:])  # (T, B, J)
        return out.reshape(nframes, bs, njoints, nfeats).permute(1, 2, 3, 0)  # (B, J, 1, T)


def median_seconds(fns: list, reps: int, sync, warm_up: bool = True) -> list[float]:
    """Median wall time of each function; runs are interleaved (a, b, a, b, ...) so that load from other processes on
    a shared machine hits every contender alike. `warm_up=False` when each function has just run once already."""
    if warm_up:  # allocator, kernels, lazy init, optimizer state
        for fn in fns:
            fn()
    sync()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, slot in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            sync()
            slot.append(time.perf_counter() - start)
    return [statistics.median(slot) for slot in times]


def bench_sampling(
    cfg: MDMConfig, device: torch.device, reps: int, sync, batch: int, frames: int, scale: float, bf16: bool
):
    torch.manual_seed(0)
    ours = MDM.from_config(cfg).to(device).eval()
    naive = NaiveMDM(cfg).to(device).eval()
    naive.load_state_dict(ours.state_dict(), strict=True)
    diffusion = GaussianDiffusion(1000)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, frames, cfg.njoints, generator=gen, device=device)
    text = torch.randn(batch, cfg.text_dim, generator=gen, device=device)
    noise = torch.randn(batch, frames, cfg.njoints, generator=gen, device=device)
    t = torch.full((batch,), 500, dtype=torch.long, device=device)
    guided = classifier_free_guidance(ours, scale, text_emb=text)

    def ours_step() -> Tensor:
        with torch.inference_mode():
            return diffusion.p_sample(guided(x, t), x, t, noise=noise)

    x_official = x.permute(0, 2, 1).unsqueeze(2)  # (B, T, J) -> (B, J, 1, T)
    noise_official = noise.permute(0, 2, 1).unsqueeze(2)

    def naive_step() -> Tensor:
        with torch.no_grad():
            cond = naive(x_official, t, text)
            uncond = naive(x_official, t, text, uncond=True)
            return diffusion.p_sample(uncond + scale * (cond - uncond), x_official, t, noise=noise_official)

    def bf16_step() -> Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            return diffusion.p_sample(guided(x, t), x, t, noise=noise)

    # These first calls check the outputs and double as the warm-up.
    reference = ours_step()
    agreement = (reference - naive_step().squeeze(2).permute(0, 2, 1)).abs().max().item()
    if not bf16:
        return (*median_seconds([ours_step, naive_step], reps, sync, warm_up=False), None), (agreement, None)
    bf16_error = (bf16_step().float() - reference).abs().max().item()
    times = median_seconds([ours_step, naive_step, bf16_step], reps, sync, warm_up=False)
    return tuple(times), (agreement, bf16_error)


def bench_training(cfg: MDMConfig, device: torch.device, reps: int, sync, batch: int, frames: int):
    torch.manual_seed(0)
    diffusion = GaussianDiffusion(1000)
    gen = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(batch, frames, cfg.njoints, generator=gen, device=device)
    text = torch.randn(batch, cfg.text_dim, generator=gen, device=device)
    lengths = torch.randint(40, frames + 1, (batch,), generator=gen, device=device)
    mask = torch.arange(frames, device=device)[None] < lengths[:, None]  # (B, T)

    def make_step(model: nn.Module, layout_official: bool):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        model.train()

        def step() -> None:
            t = diffusion.sample_timesteps(batch, gen, device)
            x_t = diffusion.q_sample(x0, t, torch.randn(x0.shape, generator=gen, device=device))
            if layout_official:
                pred = model(x_t.permute(0, 2, 1).unsqueeze(2), t, text).squeeze(2).permute(0, 2, 1)
            else:
                pred = model(x_t, t, text, mask=mask, generator=gen)
            loss = masked_mse(pred, x0, mask).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    ours = MDM.from_config(cfg).to(device)
    naive = NaiveMDM(cfg).to(device)
    naive.load_state_dict(ours.state_dict())
    return median_seconds([make_step(ours, False), make_step(naive, True)], reps, sync)


PAPER_SET = (3, 383)  # classes x samples per class (Table 1 protocol)
OFFICIAL_SAMPLER = ("ancestral", 100, "official")


def bench_paper_set(cfg: MDMConfig, device: torch.device, sync, frames: int,
                    contenders: list[tuple[str, int, str]], timed_steps: int | None,
                    reps: int) -> list[tuple[float, float]]:
    """(seconds for the whole set, seconds per step) for each (sampler, steps, spacing), interleaved per repetition."""
    classes, per_class = PAPER_SET
    torch.manual_seed(0)
    model = MDM.from_config(cfg).to(device).eval()
    diffusion = GaussianDiffusion(1000)
    gen = torch.Generator(device=device).manual_seed(0)
    text = torch.randn(per_class, cfg.text_dim, generator=gen, device=device)
    guided = classifier_free_guidance(model, 2.5, text_emb=text)
    samplers = [make_sampler(name, diffusion, steps, spacing=spacing) for name, steps, spacing in contenders]

    def run(sampler, count: int) -> None:
        x = torch.randn(per_class, frames, cfg.njoints, generator=gen, device=device)
        with torch.inference_mode():
            for t_index, step in enumerate(sampler.timesteps.tolist()[:count]):
                t = torch.full((per_class,), step, dtype=torch.long, device=device)
                x = sampler.step(guided(x, t), t_index, x, generator=gen)

    for sampler in samplers:  # warm-up
        run(sampler, 1)
    sync()
    per_step: list[list[float]] = [[] for _ in samplers]
    for _ in range(reps):
        for sampler, slot in zip(samplers, per_step, strict=True):
            count = len(sampler.timesteps) if timed_steps is None else min(timed_steps, len(sampler.timesteps))
            start = time.perf_counter()
            run(sampler, count)
            sync()
            slot.append((time.perf_counter() - start) / count)
    out = []
    for sampler, slot in zip(samplers, per_step, strict=True):
        step_s = statistics.median(slot)
        out.append((step_s * len(sampler.timesteps) * classes, step_s))
    return out


def report_paper_set(args: argparse.Namespace, cfg: MDMConfig, size: str, device: torch.device, sync) -> None:
    contenders = [(args.sampler, args.steps, args.spacing), OFFICIAL_SAMPLER]
    timed = None if args.full_set else args.set_steps
    (fast_s, fast_step), (official_s, official_step) = bench_paper_set(cfg, device, sync, args.frames, contenders,
                                                                       timed, args.reps)
    how = "measured end to end" if args.full_set else f"projected from {args.set_steps} timed steps per batch"
    print(
        f"[{device.type} {size}] paper set, {PAPER_SET[0]} x {PAPER_SET[1]} motions x {args.frames} frames ({how}): "
        f"{args.sampler} {args.steps} {args.spacing} steps {fast_s:.0f} s ({fast_step:.2f} s/step), "
        f"official ancestral 100 steps "
        f"{official_s:.0f} s ({official_step:.2f} s/step), {official_s / fast_s:.1f}x faster",
        flush=True,
    )


def report_sampling(args: argparse.Namespace, cfg: MDMConfig, size: str, device: torch.device, sync) -> None:
    (ours_s, naive_s, bf16_s), (agreement, bf16_error) = bench_sampling(
        cfg, device, args.reps, sync, args.batch, args.frames, 2.5, args.bf16
    )
    print(
        f"[{device.type} {size}] guided denoising step, {args.batch} x {args.frames} frames: "
        f"ours {1 / ours_s:.3f} steps/s ({ours_s:.2f} s), naive {1 / naive_s:.3f} steps/s ({naive_s:.2f} s), "
        f"speedup {naive_s / ours_s:.2f}x, max |ours - naive| {agreement:.1e}",
        flush=True,
    )
    if bf16_s is not None:
        print(
            f"[{device.type} {size}]   opt-in bf16 autocast: {1 / bf16_s:.3f} steps/s ({bf16_s:.2f} s), "
            f"speedup over naive {naive_s / bf16_s:.2f}x, max |bf16 - fp32| {bf16_error:.1e} (inexact)",
            flush=True,
        )


def report_training(args: argparse.Namespace, cfg: MDMConfig, size: str, device: torch.device, sync) -> None:
    ours_s, naive_s = bench_training(cfg, device, args.reps, sync, args.train_batch, args.train_frames)
    print(
        f"[{device.type} {size}] training step, {args.train_batch} x {args.train_frames} frames: "
        f"ours {1 / ours_s:.3f} steps/s ({ours_s:.2f} s), naive {1 / naive_s:.3f} steps/s ({naive_s:.2f} s), "
        f"speedup {naive_s / ours_s:.2f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2, help="timed repetitions per measurement (after one warm-up)")
    parser.add_argument("--sizes", default="embedded,official", help="comma list of: " + ", ".join(SIZES))
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (every available device)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--batch", type=int, default=383, help="sampling batch (motions)")
    parser.add_argument("--frames", type=int, default=60, help="sampling frames")
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--train-frames", type=int, default=196)
    parser.add_argument("--no-sample", action="store_true", help="skip the sampling measurements")
    parser.add_argument("--no-train", action="store_true", help="skip the training measurements")
    parser.add_argument("--bf16", action="store_true", help="also time our sampling step under bf16 autocast")
    parser.add_argument("--no-paper-set", dest="paper_set", action="store_false",
                        help="skip the time to generate the paper's 1,149-sample set")
    parser.add_argument("--sampler", default="dpmpp_2m", choices=SAMPLERS, help="the fast sampler of the paper set")
    parser.add_argument("--steps", type=int, default=7, help="its steps")
    parser.add_argument("--spacing", default="high_noise", choices=SPACINGS, help="which steps it visits")
    parser.add_argument("--set-steps", type=int, default=3, help="timed steps per sampler for the projection")
    parser.add_argument("--full-set", action="store_true", help="generate the whole set instead of projecting")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]

    malloc = "tuned" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "default (use `make bench` for the tuned one)"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, glibc malloc {malloc}, "
        f"reps={args.reps} (median after one warm-up, contenders interleaved)"
    )
    for device_name in devices:
        device = torch.device(device_name)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        if device.type == "cuda":
            print(f"CUDA device: {torch.cuda.get_device_name(device)}")
        for size in args.sizes.split(","):
            cfg = SIZES[size]
            if not args.no_sample:
                report_sampling(args, cfg, size, device, sync)
            if not args.no_train:
                report_training(args, cfg, size, device, sync)
            if args.paper_set:
                report_paper_set(args, cfg, size, device, sync)


if __name__ == "__main__":
    main()
