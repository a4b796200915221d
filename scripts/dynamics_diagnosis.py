"""Why a primitive's dynamics miss: jitter, missing steps or missing rotation, teacher samples beside real segments.

    python scripts/dynamics_diagnosis.py [--teacher releases/teacher/teacher.pt] [--primitive side_bend ...]
        [--samples 30] [--guide guide.pt --guide-weight 3 --guide-from 80] [--sampler ancestral --steps 50]
        [--recogniser rec.pt] [--guidance-from 20] [--denoise-steps 0 20 40]

The report card says that a primitive's speed or acceleration is off; this says in which way, with the card's own
prompts and lengths (card seed 0) and its held-out real segments. Per primitive, medians over motions:
- acceleration (m/s2), as the card measures it;
- jitter ratio (`kinemic.metrics.jitter_ratio`): acceleration over that of the 5-frame moving average; a
  high-frequency residue raises it above the real segments', a motion that is merely faster does not;
- ankle lift speed (m/s, mean vertical ankle speed): whether the feet step;
- shoulder-line yaw: the path it travels and its range (degrees), how much the body turns or twists.
Measured on the release (2026-12-02): side bends carry a residue the real ones do not (jitter 1.9 against 1.2, 1.8
with every sampler tried), and turns rotate the full 180 degrees without stepping (ankles 0.02 against 0.08 m/s).

`--denoise-steps` adds where the residue comes from: the primitive's real segments noised to each base step t and
denoised in ONE x0 prediction (the card's prompt, no guidance), with the prediction's error (RMS in normalised
features) beside the measures above. At t = 0 the input is all but clean, so whatever the prediction adds is the
denoiser's own: measured on the release, its x0 at t = 0 misses by 0.10 and carries the side bends' residue. A last
row projects the real segments onto the span of the output layer (every x0 the network can emit lies in it, 128
dimensions of the 263): what the width alone costs.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
from pathlib import Path

import numpy as np
import torch

from kinemic.batching import collate
from kinemic.conditioning import TextSpec, default_cache_dir, text_embedder
from kinemic.corpus import PreparedPrior
from kinemic.diffusion import Autoguidance
from kinemic.metrics import jitter_ratio, mean_joint_difference
from kinemic.motion import features_to_joints
from kinemic.recogniser import Recogniser, RecogniserConfig
from kinemic.samplers import SAMPLERS
from kinemic.sampling import SampleRequest, sample_motions
from kinemic.skeleton import FPS, JOINT_NAMES
from kinemic.teacher import TeacherCheckpoint
from kinemic.teacher_card import CardConfig, card_request, check_guide, prepare_card

ANKLES = [JOINT_NAMES.index("left_ankle"), JOINT_NAMES.index("right_ankle")]
SHOULDERS = JOINT_NAMES.index("left_shoulder"), JOINT_NAMES.index("right_shoulder")


def describe(joints: list[np.ndarray]) -> dict[str, float]:
    """The medians over motions of the measures in the module docstring; joints (T, 22, 3), y up."""
    acceleration, ankles, yaw_path, yaw_range = [], [], [], []
    for motion in joints:
        acceleration.append(mean_joint_difference(motion - motion[:, :1], 2) * FPS**2)
        ankles.append(np.abs(np.diff(motion[:, ANKLES, 1], axis=0)).mean() * FPS)
        line = motion[:, SHOULDERS[0]] - motion[:, SHOULDERS[1]]
        yaw = np.degrees(np.unwrap(np.arctan2(line[:, 2], line[:, 0])))
        yaw_path.append(np.abs(np.diff(yaw)).sum())
        yaw_range.append(np.ptp(yaw))
    return {"acceleration": float(np.median(acceleration)), "jitter": float(np.median(jitter_ratio(joints))),
            "ankle_lift": float(np.median(ankles)), "yaw_path": float(np.median(yaw_path)),
            "yaw_range": float(np.median(yaw_range))}


def one_shot_x0(teacher: TeacherCheckpoint, features: list[np.ndarray], text_emb: np.ndarray, step: int,
                seed: int = 0) -> tuple[list[np.ndarray], float]:
    """Real motions noised to base step `step` and denoised by one conditional x0 prediction: (the de-normalised
    predictions, their RMS error in normalised features over the valid frames)."""
    batch = collate(features, teacher.stats, torch.device("cpu"))  # normalised, zero-padded, with the valid mask
    t = torch.full((len(features),), step, dtype=torch.long)
    noise = torch.randn(batch.x0.shape, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        x_t = teacher.diffusion().q_sample(batch.x0, t, noise)
        predicted = teacher.model.eval()(x_t, t, text_emb=torch.from_numpy(text_emb), mask=batch.mask)
    error = float((predicted - batch.x0)[batch.mask].square().mean().sqrt())
    predicted = predicted.numpy()
    return [teacher.stats.denormalize(predicted[i, : len(f)]) for i, f in enumerate(features)], error


def output_span_projection(teacher: TeacherCheckpoint, features: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Motions projected onto the affine span of the model's output layer (`output_process.poseFinal`): the closest
    x0 the network could emit frame by frame. (the de-normalised projections, their RMS error, normalised)."""
    final = teacher.model.output_process.poseFinal
    weight = final.weight.detach().double().numpy()  # (263, latent)
    bias = final.bias.detach().double().numpy()
    basis, _ = np.linalg.qr(weight)
    projected, squared, count = [], 0.0, 0
    for f in features:
        z = teacher.stats.normalize(f).astype(np.float64)
        p = (z - bias) @ basis @ basis.T + bias
        squared, count = squared + float(((p - z) ** 2).sum()), count + z.size
        projected.append(teacher.stats.denormalize(p.astype(np.float32)))
    return projected, float(np.sqrt(squared / count))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=Path("releases/teacher/teacher.pt"))
    parser.add_argument("--prior", type=Path, default=Path("data/prepared/prior"))
    parser.add_argument("--primitives", type=Path, default=Path("data/raw/synthetic/prior/primitives.parquet"))
    parser.add_argument("--primitive", action="append", help="repeatable; default: side_bend, butt_kicks, turn_around")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--sampler", default="ancestral", choices=SAMPLERS)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance-from", type=int, default=0,
                        help="classifier-free guidance (2.5) only at base steps t >= this (0: every step)")
    parser.add_argument("--guide", type=Path, help="autoguide with this weaker teacher of the same lineage")
    parser.add_argument("--guide-weight", type=float, default=3.0)
    parser.add_argument("--guide-from", type=int, default=80)
    parser.add_argument("--recogniser", type=Path, help="a recogniser saved by teacher_card.py (else one is trained)")
    parser.add_argument("--denoise-steps", type=int, nargs="*", default=[],
                        help="also denoise the real segments (up to the teacher's length) from these base steps t "
                             "in one x0 prediction each, and measure that")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    prior = PreparedPrior.load(args.prior)
    saved = Recogniser.load(args.recogniser) if args.recogniser else None
    inputs = prepare_card(prior, args.primitives, RecogniserConfig(), saved)
    teacher = TeacherCheckpoint.load(args.teacher)
    autoguidance = None
    if args.guide:
        guide = TeacherCheckpoint.load(args.guide)
        check_guide(teacher, guide)
        autoguidance = Autoguidance(guide.model.eval(), args.guide_weight, args.guide_from)
    embed = text_embedder(TextSpec.from_dict(teacher.text_encoder), default_cache_dir())
    asked = card_request(inputs, CardConfig(samples_per_primitive=args.samples), teacher.max_frames)
    if args.sampler == "ancestral":  # the card's official respacing
        diffusion, steps = teacher.diffusion(args.steps), None
    else:
        diffusion, steps = teacher.diffusion(), args.steps
    classes = inputs.recogniser.classes
    print("| primitive | motions | acceleration m/s2 | jitter ratio | ankle lift m/s | shoulder yaw path / range (deg) "
          "| x0 error |")
    print("|---|---|---|---|---|---|---|")
    for primitive in args.primitive or ["side_bend", "butt_kicks", "turn_around"]:
        if primitive not in classes:
            parser.error(f"unknown primitive {primitive!r}; the recogniser knows {', '.join(classes)}")
        label = classes.index(primitive)
        real = [features_to_joints(f) for f, y in zip(inputs.reference.features, inputs.reference.labels,
                                                      strict=True) if y == label]
        keep = np.flatnonzero(asked.labels == label)
        request = SampleRequest(lengths=asked.lengths[keep],
                                text_emb=np.asarray(embed([asked.prompts[i] for i in keep]), np.float32))
        with torch.inference_mode():
            generated = sample_motions(teacher.model, diffusion, teacher.stats, request, pad_to=teacher.max_frames,
                                       seed=0, sampler=args.sampler, steps=steps, autoguidance=autoguidance,
                                       guidance_from_step=args.guidance_from).joints
        rows = [("real", real, None), ("teacher", generated, None)]
        if args.denoise_steps:  # the card's prompts for this primitive, one per real segment it fits
            fits = [f for f, y in zip(inputs.reference.features, inputs.reference.labels, strict=True)
                    if y == label and len(f) <= teacher.max_frames]
            prompts = [asked.prompts[keep[i % len(keep)]] for i in range(len(fits))]
            text = np.asarray(embed(prompts), np.float32)
            rows.append(("real, the segments denoised below", [features_to_joints(f) for f in fits], None))
            for step in args.denoise_steps:
                denoised, error = one_shot_x0(teacher, fits, text, step)
                rows.append((f"real denoised from t = {step}", [features_to_joints(f) for f in denoised], error))
            projected, error = output_span_projection(teacher, fits)
            rows.append(("real on the output layer's span", [features_to_joints(f) for f in projected], error))
        for name, joints, error in rows:
            d = describe(joints)
            print(f"| {primitive}, {name} | {len(joints)} | {d['acceleration']:.2f} | {d['jitter']:.2f} | "
                  f"{d['ankle_lift']:.3f} | {d['yaw_path']:.0f} / {d['yaw_range']:.0f} | "
                  f"{'' if error is None else f'{error:.3f}'} |")


if __name__ == "__main__":
    main()
