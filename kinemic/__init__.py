"""kinemic: few-shot skeleton action synthesis by text-to-motion distillation (KineMIC), as a DVC pipeline.

Conventions used across the package:
- motion features are float32 (T, 263) per sample and (B, T, 263) batch-first inside the library, with explicit lengths
  and a boolean mask (B, T) that is True on valid frames;
- skeletons are SMPL-22 joint positions (T, 22, 3), y-up, metres, 20 fps, and (B, T, V, C) in batches;
- every random choice takes a seed from params.
"""

__version__ = "0.1.0"
