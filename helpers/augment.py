"""The assignment's augmentation, twice: the albumentations reference and a batched twin.

Training transform (the assignment's definition):
    pad to 40x40 (reflect) -> RandomCrop 32x32 -> HorizontalFlip(p=0.5)
    -> Cutout: one 8x8 hole filled with the dataset mean -> Normalize -> tensor.

:func:`albumentations_train` builds it with albumentations 2.x. It is the
reference, but per-image CPU work in a DataLoader is the bottleneck of this
recipe, so :class:`BatchedAugment` does the same on whole batches with tensor
ops on the training device. Its parameters have the same distribution as the
reference's (read from albumentations 2.0.8's source, checked in the tests):

* crop: top-left offset uniform over 0..8 in each axis (RandomCrop draws
  ``randint(0, 40 - 32)``), i.e. a shift of -4..4 of the original image;
* flip: Bernoulli(0.5);
* cutout: CoarseDropout draws the hole's top-left corner uniformly in
  0..(32 - 8) in each axis, so the hole always lies wholly inside the image;
  its pixels become the fill value, which Normalize then maps like any pixel.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .config import CIFAR10_MEAN, CIFAR10_STD

PAD = 4
CROP = 32
CUTOUT = 8


def mean_fill() -> tuple[int, ...]:
    """The dataset mean as a uint8 pixel: what the cutout hole is filled with."""
    return tuple(int(round(m * 255)) for m in CIFAR10_MEAN)


def albumentations_train():
    """The reference training transform (albumentations 2.x, strict arguments).

    ``strict=True`` makes a misspelt or 1.x-style argument (``max_holes``,
    ``max_height``...) raise instead of being silently ignored with a warning.
    """
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    size = CROP + 2 * PAD
    return A.Compose([
        A.PadIfNeeded(min_height=size, min_width=size, border_mode=cv2.BORDER_REFLECT_101, strict=True),
        A.RandomCrop(height=CROP, width=CROP, strict=True),
        A.HorizontalFlip(p=0.5, strict=True),
        A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(CUTOUT, CUTOUT),
                        hole_width_range=(CUTOUT, CUTOUT), fill=mean_fill(), p=1.0, strict=True),
        A.Normalize(mean=CIFAR10_MEAN, std=CIFAR10_STD, max_pixel_value=255.0, strict=True),
        ToTensorV2(),
    ], strict=True)


def albumentations_test():
    """Test-time transform: Normalize -> tensor."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    return A.Compose([A.Normalize(mean=CIFAR10_MEAN, std=CIFAR10_STD, max_pixel_value=255.0, strict=True),
                      ToTensorV2()], strict=True)


def reseed(compose, seed: int) -> None:
    """Give every transform of an albumentations Compose its own random stream.

    ``Compose.set_random_seed`` hands the *same* seed to every transform, so the
    crop, flip and cutout draws come from identical streams; and DataLoader
    workers inherit identical copies of the generators, so without reseeding
    each worker repeats the others' augmentations. Spawned seeds avoid both.
    """
    children = np.random.SeedSequence(seed).spawn(len(compose.transforms) + 1)
    compose.set_random_seed(int(children[0].generate_state(1)[0]))
    for t, ss in zip(compose.transforms, children[1:]):
        t.set_random_seed(int(ss.generate_state(1)[0]))


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC (or float 0..255) -> normalized float32 NCHW."""
    x = x.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CIFAR10_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`: normalized NCHW -> float NHWC in [0, 1]."""
    mean = torch.tensor(CIFAR10_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=x.device).view(1, 3, 1, 1)
    return (x.float() * std + mean).permute(0, 2, 3, 1).clamp(0, 1)


class BatchedAugment:
    """The reference transform applied to a whole batch at once, on its device.

    The data set is held once as uint8 NHWC, reflect-padded to 40x40
    (:meth:`prepare`). A batch is then one ``index_select`` (pick images), one
    ``gather`` of whole RGB pixels (crop and flip only permute pixel positions,
    so a table of the 9x9x2 possible index maps makes both a single lookup), one
    ``scatter`` (the 64 hole pixels get the uint8 mean, as in the reference,
    before normalization) and one in-place normalization. Gathering NHWC pixels
    yields a channels_last batch with no extra copy.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        dev = torch.device(device)
        ar = torch.arange(CROP)
        side = CROP + 2 * PAD
        maps = []
        for flip in (False, True):
            for dy in range(2 * PAD + 1):
                for dx in range(2 * PAD + 1):
                    cols = dx + ar
                    maps.append((dy + ar).view(CROP, 1) * side + (cols.flip(0) if flip else cols).view(1, CROP))
        self.crop_maps = torch.stack(maps).view(len(maps), CROP * CROP).to(dev)
        holes = []
        for cy in range(CROP - CUTOUT + 1):
            for cx in range(CROP - CUTOUT + 1):
                r = torch.arange(cy, cy + CUTOUT).view(CUTOUT, 1)
                holes.append((r * CROP + torch.arange(cx, cx + CUTOUT).view(1, CUTOUT)).flatten())
        self.hole_maps = torch.stack(holes).to(dev)
        self.fill = torch.tensor(mean_fill(), dtype=torch.uint8, device=dev).view(1, 1, 3)
        self.mean = torch.tensor(CIFAR10_MEAN, device=dev).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(CIFAR10_STD, device=dev).view(1, 3, 1, 1) * 255

    @staticmethod
    def prepare(x: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """uint8 NHWC images -> uint8 NHWC reflect-padded by 4 (cv2 BORDER_REFLECT_101 == torch 'reflect')."""
        x = torch.as_tensor(x).to(device).permute(0, 3, 1, 2)
        # torch's reflect pad needs a float NCHW tensor; pad in chunks to bound memory.
        out = [F.pad(c.float(), (PAD,) * 4, mode="reflect").to(torch.uint8).permute(0, 2, 3, 1)
               for c in x.split(8192)]
        return torch.cat(out).contiguous()

    @staticmethod
    def sample(n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw the random parameters for ``n`` images (CPU tensors)."""
        g = generator
        return {
            "dy": torch.randint(0, 2 * PAD + 1, (n,), generator=g),
            "dx": torch.randint(0, 2 * PAD + 1, (n,), generator=g),
            "flip": torch.rand(n, generator=g) < 0.5,
            "cy": torch.randint(0, CROP - CUTOUT + 1, (n,), generator=g),
            "cx": torch.randint(0, CROP - CUTOUT + 1, (n,), generator=g),
        }

    def apply(self, padded: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augment ``padded`` (N, 40, 40, 3) uint8 with parameters ``p`` -> normalized float32
        (N, 3, 32, 32) in channels_last memory format."""
        n, h, w, c = padded.shape
        dev = padded.device
        n_off = 2 * PAD + 1
        key = (p["flip"].long() * n_off + p["dy"]) * n_off + p["dx"]
        idx = self.crop_maps.index_select(0, key.to(dev)).view(n, CROP * CROP, 1)
        x = padded.reshape(n, h * w, c).gather(1, idx.expand(n, CROP * CROP, c))
        hole = self.hole_maps.index_select(0, (p["cy"] * (CROP - CUTOUT + 1) + p["cx"]).to(dev))
        x.scatter_(1, hole.view(n, -1, 1).expand(n, hole.shape[1], c), self.fill.expand(n, hole.shape[1], c))
        x = x.view(n, CROP, CROP, c).permute(0, 3, 1, 2).float()
        return x.sub_(self.mean).div_(self.std)

    def __call__(self, padded: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(padded, self.sample(len(padded), generator))
