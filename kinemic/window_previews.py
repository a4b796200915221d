"""Where did mining look? The window the trained MIC module selects inside a soft pair's prior motion (Figure 1).

The train stage draws these previews from the student it has just trained (MIC is not saved: nothing downstream
needs it), beside the loss curves; `kinemic.preview` renders them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kinemic.batching import collate
from kinemic.objectives import best_window_starts
from kinemic.teacher import TeacherCheckpoint
from kinemic.training import StudentParts, TrainingData


@dataclass
class MinedWindow:
    """One soft pair with the window the MIC attention selects: the paper's Figure 1 as data."""

    class_name: str
    target_index: int
    prior_index: int
    start: int
    length: int
    attention: np.ndarray  # (T_prior,)


@torch.no_grad()
def mine_windows(
    parts: StudentParts,
    teacher: TeacherCheckpoint,
    data: TrainingData,
    count: int,
    seed: int,
    t_fraction: float = 0.1,
) -> list[MinedWindow]:
    """For `count` (target, prior) pairs, the window the trained MIC module mines at a low noise level."""
    if parts.mic is None:
        return []
    device = next(parts.mic.parameters()).device
    rng = np.random.default_rng(seed)
    diffusion = teacher.diffusion()
    found = []
    per_class = max(1, count // max(1, len(data.class_names)))
    for c in range(len(data.class_names)):
        targets = np.flatnonzero(data.target_labels == c)[:per_class]
        for ti in targets:
            pi = int(rng.choice(data.pairs_by_class[c]))
            motion = np.asarray(data.prior.motion(pi))
            batch = collate([motion], teacher.stats, device)
            t = torch.full((1,), int(t_fraction * (diffusion.num_timesteps - 1)), dtype=torch.long, device=device)
            noise = torch.randn(batch.x0.shape, generator=torch.Generator().manual_seed(seed)).to(device)
            caption = data.caption_embeddings[data.prior_caption_rows[pi][0]][None]
            caption = torch.from_numpy(caption).to(device)
            x_t = diffusion.q_sample(batch.x0, t, noise)
            _, u_p = teacher.model(x_t, t, text_emb=caption, mask=batch.mask, return_latent=True)
            out = parts.mic(u_p.float(), batch.lengths)
            m = min(len(motion), len(data.target_features[ti]))
            start = int(best_window_starts(out.attention, batch.lengths, torch.tensor([m], device=device))[0])
            found.append(MinedWindow(data.class_names[c], int(ti), pi, start, m, out.attention[0].cpu().numpy()))
    return found[:count]
