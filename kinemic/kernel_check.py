"""A fingerprint of how this process's numeric kernels round: the hash of a fixed set of the operations the training
stages run. Two machines (or two kernel settings) with the same fingerprint compute those operations bit for bit
alike; `scripts/kernel_fingerprint.py` prints it. Call it after the kernel pins (`import stages`) if they should count.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from scipy import linalg

from kinemic.runtime import apply_threads, platform_facts


def _operations(generator: torch.Generator) -> list[torch.Tensor | np.ndarray]:
    """Forward and backward of the layer kinds of MDM (linear, attention), MIC (bidirectional GRU) and ST-GCN ((9, 1)
    convolution, adjacency einsum), elementwise math, MDM's sampling forward (the fused inference path, padded), and
    FID's covariance product and its square root (numpy BLAS and LAPACK)."""
    torch.manual_seed(0)  # module initialisation
    project = torch.nn.Linear(263, 128)
    layer = torch.nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
    gru = torch.nn.GRU(263, 64, batch_first=True, bidirectional=True)
    conv = torch.nn.Conv2d(3, 32, (9, 1), padding=(4, 0))
    motion = torch.randn(16, 60, 263, generator=generator)
    skeleton = torch.randn(8, 3, 50, 25, generator=generator)
    adjacency = torch.rand(25, 25, generator=generator)
    encoded = layer(project(motion))
    recurrent, _ = gru(motion)
    graph = torch.einsum("nctv,vw->nctw", conv(skeleton), adjacency)
    (encoded.square().mean() + recurrent.square().mean() + graph.square().mean()).backward()
    grads = [p.grad for module in (project, layer, gru, conv) for p in module.parameters()]
    pointwise = torch.nn.functional.gelu(motion).softmax(-1).log1p()
    # one row and a few rows through a linear layer (a single prompt's embedding, a guided batch of a few samples) and a
    # matrix-vector product: MKL takes other paths for these than for the large products above
    weight, bias = torch.randn(128, 512, generator=generator), torch.randn(128, generator=generator)
    rows = torch.randn(6, 512, generator=generator)
    small = [torch.nn.functional.linear(rows[:1], weight, bias), torch.nn.functional.linear(rows, weight, bias),
             weight.T @ bias]
    layer.eval()  # sampling: the fused inference path of the encoder (other kernels than training's)
    with torch.inference_mode():
        padding = torch.arange(60) >= torch.tensor([[60], [41]] * 8)
        sampled = layer(project(motion), src_key_padding_mask=padding).clone()
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((200, 64)), rng.standard_normal((200, 64))
    product = np.cov(real, rowvar=False) @ np.cov(fake, rowvar=False)
    return [encoded, recurrent, graph, pointwise, *small, sampled, *grads, product, linalg.sqrtm(product)]


def kernel_fingerprint(threads: int = 2) -> tuple[str, dict[str, Any]]:
    """(sha256 of the results, the kernels each library chose: torch's level, the BLAS kernels, the pins in effect)."""
    apply_threads(threads)
    digest = hashlib.sha256()
    for result in _operations(torch.Generator().manual_seed(0)):
        array = result.detach().numpy() if isinstance(result, torch.Tensor) else result
        digest.update(np.ascontiguousarray(array).tobytes())
    facts = platform_facts()
    kernels = {key: facts[key] for key in ("cpu", "isa", "torch_cpu_capability", "blas", "numpy_vector_math",
                                          "kernel_settings", "torch", "numpy")}
    return digest.hexdigest(), {**kernels, "threads": threads}
