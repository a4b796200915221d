"""CUDA paths: bf16 autocast and the fused attention path stay within tolerance of fp32 on the CPU. GPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinemic.devices import autocast
from kinemic.models.mdm import MDM

pytestmark = pytest.mark.gpu


def _inputs(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 60, 263, generator=g)
    t = torch.randint(0, 100, (8,), generator=g)
    text = torch.randn(8, 512, generator=g)
    mask = torch.arange(60)[None] < torch.randint(30, 61, (8,), generator=g)[:, None]
    return x.to(device), t.to(device), text.to(device), mask.to(device)


def test_mdm_cuda_fp32_and_bf16_match_cpu():
    torch.manual_seed(0)
    model = MDM(latent_dim=512, ff_size=1024, num_layers=8, num_heads=4, mask_frames=True).eval()
    x, t, text, mask = _inputs("cpu")
    with torch.inference_mode():
        reference = model(x, t, text_emb=text, mask=mask)
        model_gpu = model.to("cuda")
        fp32 = model_gpu(*[a.cuda() for a in (x, t)], text_emb=text.cuda(), mask=mask.cuda()).cpu()
        with autocast(torch.device("cuda"), "bf16"):
            bf16 = model_gpu(*[a.cuda() for a in (x, t)], text_emb=text.cuda(), mask=mask.cuda()).float().cpu()
    valid = mask[..., None].expand_as(reference)
    np.testing.assert_allclose(fp32[valid], reference[valid], atol=2e-4)
    # bf16 keeps ~3 significant digits: the x0 prediction must stay close in relative terms
    err = (bf16[valid] - reference[valid]).abs().mean() / reference[valid].abs().mean()
    assert err < 0.02, f"bf16 relative error {err:.4f}"
