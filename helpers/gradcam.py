"""GradCAM maps through the ``grad-cam`` library (no hand-written hooks)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

# Layer3 ends at 4x4 (the default: the last spatial map); Layer2 at 8x8 is finer.
TARGET_LAYERS = ("layer3", "layer2")


def gradcam_maps(model: nn.Module, images: torch.Tensor, classes: Sequence[int],
                 layer: str = "layer3") -> np.ndarray:
    """GradCAM for ``classes[i]`` on ``images[i]``: (N, H, W) in [0, 1], upsampled to the image size.

    The model's train/eval mode is restored afterwards (grad-cam switches it to eval).
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if layer not in TARGET_LAYERS:
        raise ValueError(f"GradCAM layer must be one of {', '.join(TARGET_LAYERS)}, got {layer!r}")
    was_training = model.training
    try:
        with GradCAM(model=model, target_layers=[getattr(model, layer)]) as cam:
            maps = cam(input_tensor=images, targets=[ClassifierOutputTarget(int(c)) for c in classes])
    finally:
        model.train(was_training)
    return np.clip(maps, 0.0, 1.0)
