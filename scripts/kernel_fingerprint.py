"""Does this machine compute what the committed dvc.lock's machine computed? A five-second answer before a
16-minute `dvc repro`.

    python scripts/kernel_fingerprint.py [--threads 2] [--native]

Runs the kinds of operations the training stages run (kinemic.kernel_check: linear layers and attention in training
and in the fused sampling path, one-row and few-row products, a bidirectional GRU, the classifier's (9, 1) temporal
convolutions and its einsum, their gradients, GELU/softmax, and FID's covariance and sqrtm through numpy's BLAS) on
fixed random inputs, under the kernel pins every stage makes (stages/__init__.py),
and prints the sha256 of all results with the kernel each library chose. Two machines that print the same hash round
these operations alike, so the training stages should write the same bytes there (same packages and
`runtime.threads`); a different hash means they will differ in the last digits, and results compare with their
intervals only. `--native` skips the pins (KINEMIC_CPU_KERNELS=native), to see what they change.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="as runtime.threads (the default's 2)")
    parser.add_argument("--native", action="store_true", help="leave the kernels to the libraries (no pins)")
    args = parser.parse_args()
    if args.native:
        os.environ["KINEMIC_CPU_KERNELS"] = "native"
    import stages  # noqa: F401  (the pins, before numpy and torch load)
    from kinemic.kernel_check import kernel_fingerprint

    fingerprint, kernels = kernel_fingerprint(args.threads)
    print(fingerprint)
    for name, value in kernels.items():
        print(f"  {name}: {value}")


if __name__ == "__main__":
    main()
