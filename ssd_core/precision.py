"""float32 stays float32 on NVIDIA GPUs.

PyTorch runs cuDNN convolutions in TF32 by default on Ampere and later GPUs (a 10-bit mantissa): there an
importance, a dampened weight or an accuracy can differ from the CPU's far beyond float rounding (on an H200,
SSD's Fisher importance on digits was up to 47% off the CPU's with TF32 and 3e-4 without), while the lab promises
the same numbers on every device to float rounding. Imported by :mod:`ssd_core.data`, which every computation goes through, so
TF32 is off in any process that computes with ssd_core; a program that wants TF32's speed can turn it back
on after importing ssd_core (``torch.backends.cudnn.allow_tf32 = True``) and then owns the difference.
"""

from __future__ import annotations

import torch

torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
