"""The MIC module: shapes, masked attention, independence from padding."""

from __future__ import annotations

import pytest
import torch

from kinemic.models.mic import MIC, MICConfig


def test_shapes_and_attention_mask():
    torch.manual_seed(0)
    mic = MIC(MICConfig(input_dim=8, hidden_dim=6, output_dim=5))
    x = torch.randn(3, 7, 8)
    lengths = torch.tensor([7, 4, 1])
    out = mic(x, lengths)
    assert out.z.shape == (3, 5) and out.attention.shape == (3, 7)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(3))
    assert (out.attention[1, 4:] == 0).all() and (out.attention[2, 1:] == 0).all()


def test_padding_content_does_not_matter():
    torch.manual_seed(0)
    mic = MIC(MICConfig(input_dim=8, hidden_dim=6, output_dim=5))
    x = torch.randn(2, 6, 8)
    lengths = torch.tensor([6, 3])
    y = x.clone()
    y[1, 3:] = 1e3
    torch.testing.assert_close(mic(x, lengths).z, mic(y, lengths).z)
    torch.testing.assert_close(mic(x[1:, :3], lengths[1:]).z, mic(x, lengths).z[1:], rtol=1e-5, atol=1e-6)


def test_gradients_and_validation():
    mic = MIC(MICConfig(input_dim=4, hidden_dim=4, output_dim=4))
    out = mic(torch.randn(2, 5, 4), torch.tensor([5, 2]))
    out.z.sum().backward()
    assert all(p.grad is not None for p in mic.parameters())
    with pytest.raises(ValueError, match="lengths"):
        mic(torch.randn(2, 5, 4), torch.tensor([6, 2]))
