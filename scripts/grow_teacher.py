"""Grow a teacher checkpoint to more encoder layers without changing what it computes, for a deeper fine-tune.

    python scripts/grow_teacher.py --layers 6 --out grown.pt [--teacher releases/teacher/teacher.pt]
    python scripts/release_teacher.py train --init-from grown.pt --recipe RECIPE_WITH_num_layers_6 --until S

MDM's layers are post-norm with no final norm, so a new layer appended as it is would re-normalise the old output.
The last old layer's norm2 scale and shift therefore move into the output layer (the encoder then ends on a plain
LayerNorm), and each new layer gets plain LayerNorms and zero residual branches (attention out_proj and linear2 at
zero): it maps a normalised input to itself, and its zero branches still receive gradients. The grown model's x0
equals the source's to float rounding (printed). Measured (README "The residue is the denoiser's own output"): the
release grown to 6 layers and fine-tuned 2,000 steps did not lower its x0 error floor or move the card.
"""

from __future__ import annotations

import stage_pins  # noqa: F401  (the stages' kernel pins, before numpy and torch load)

# isort: split
import argparse
import dataclasses
from pathlib import Path

import torch

from kinemic.models.mdm import MDM
from kinemic.teacher import TeacherCheckpoint


def grow_depth(model: MDM, layers: int, seed: int = 0) -> MDM:
    """A copy of `model` with `layers` encoder layers computing the same x0 (see the module docstring)."""
    old = model.config.num_layers
    if layers <= old:
        raise ValueError(f"the model has {old} layers already; grow it to more than that, not {layers}")
    torch.manual_seed(seed)  # the new layers' attention in-projections and linear1: drawn, not zero
    grown = MDM.from_config(dataclasses.replace(model.config, num_layers=layers)).to(
        next(model.parameters()).device).train(model.training)
    loaded = grown.load_state_dict(model.state_dict(), strict=False)
    if loaded.unexpected_keys:
        raise ValueError(f"state dict keys the grown model lacks: {loaded.unexpected_keys}")
    last = grown.seqTransEncoder.layers[old - 1]
    with torch.no_grad():
        final = grown.output_process.poseFinal
        final.bias += final.weight @ last.norm2.bias
        final.weight *= last.norm2.weight[None, :]
        last.norm2.weight.fill_(1.0)
        last.norm2.bias.zero_()
        for layer in grown.seqTransEncoder.layers[old:]:
            for zeroed in (layer.self_attn.out_proj, layer.linear2):
                zeroed.weight.zero_()
                zeroed.bias.zero_()
            for norm in (layer.norm1, layer.norm2):
                norm.weight.fill_(1.0)
                norm.bias.zero_()
    return grown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, default=Path("releases/teacher/teacher.pt"))
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists: choose another --out (nothing is overwritten)")
    source = TeacherCheckpoint.load(args.teacher)
    grown = grow_depth(source.model.eval(), args.layers).eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, min(60, source.max_frames), source.model.config.njoints, generator=generator)
    t = torch.tensor([0, 10, source.diffusion_steps // 2, source.diffusion_steps - 1])
    text = torch.randn(4, source.model.config.text_dim, generator=generator)
    with torch.no_grad():
        gap = (grown(x, t, text_emb=text) - source.model(x, t, text_emb=text)).abs().max().item()
    dataclasses.replace(source, model=grown).save(args.out)
    print(f"{args.teacher} ({source.model.config.num_layers} layers, step {source.step}) -> {args.out} "
          f"({args.layers} layers); largest x0 difference on random inputs {gap:.2e}")


if __name__ == "__main__":
    main()
