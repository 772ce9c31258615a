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

import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .config import CIFAR10_MEAN, CIFAR10_STD

# albumentations asks PyPI for a newer version on import; offline (a GPU box, CI) that ends in
# a UserWarning in the notebook's output. The user's own setting wins.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

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
    """The reference transform applied to whole batches, on the training device.

    The training set is held there once, reflect-padded to 40x40 uint8 NHWC,
    next to its mirror image (twice 240 MB for CIFAR-10's 50,000 images). A
    flipped crop at column offset ``dx`` is the mirror's crop at ``8 - dx``, so
    crop and flip are a choice of image and offset, and every crop row is 96
    contiguous bytes of that store. A batch is then:

    1. one ``index_select`` of 32 rows per image from an overlapping strided
       view of the store (a "row" may start at any byte);
    2. one ``scatter_`` of the mean fill into the 8x8 hole, in uint8 as the
       reference does before Normalize;
    3. one uint8 -> float32 copy and one ``addcmul`` with per-position scale
       and shift (the per-channel constants tiled over 32x32).

    Why not a per-pixel ``gather`` with a table of crop/flip index maps: it moves
    every byte through an int64 index and normalizes with (1, 3, 1, 1) broadcasts
    whose 3-long inner loop is slow in channels_last; on the 2-core CPU it ran at
    ~97,000 images/s, this at ~570,000
    (``benchmarks/augment_speed.py`` on the real data). The output is physically
    NHWC, i.e. a channels_last NCHW batch with no extra copy.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> None:
        dev = torch.device(device)
        padded = self.pad(images, dev)
        self.n, side = len(padded), CROP + 2 * PAD
        self.row_bytes, self.image_bytes = side * 3, side * side * 3
        store = torch.cat([padded, padded.flip(2)]).view(-1)
        self.rows = store.as_strided((store.numel() - CROP * 3 + 1, CROP * 3), (1, 1))
        self.row_steps = torch.arange(CROP, device=dev) * self.row_bytes
        r, c = torch.meshgrid(torch.arange(CUTOUT), torch.arange(CUTOUT * 3), indexing="ij")
        self.hole_steps = (r * CROP * 3 + c).flatten().to(dev)
        self.fill = torch.tensor(mean_fill(), dtype=torch.uint8, device=dev).repeat(CUTOUT * CUTOUT)
        std = torch.tensor(CIFAR10_STD) * 255
        self.scale = (1 / std).repeat(CROP * CROP).to(dev)
        self.shift = (-torch.tensor(CIFAR10_MEAN) * 255 / std).repeat(CROP * CROP).to(dev)

    @staticmethod
    def pad(x: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
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

    def offsets(self, idx: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """(2, N) int64 on the CPU: each image's first crop row in the store, and its hole's
        position in the crop. Computed for a whole epoch at once, moved to the device once."""
        flip = p["flip"].long()
        dx = p["dx"] + flip * (2 * PAD - 2 * p["dx"])  # the mirror's crop offset when flipped
        first_row = (idx + flip * self.n) * self.image_bytes + p["dy"] * self.row_bytes + dx * 3
        hole = p["cy"] * CROP * 3 + p["cx"] * 3
        return torch.stack([first_row, hole])

    def gather(self, offsets: torch.Tensor) -> torch.Tensor:
        """Augmented, normalized float32 (N, 3, 32, 32) in channels_last memory format, from
        :meth:`offsets` already on the device: no host work, no transfer."""
        first_row, hole = offsets
        n = len(first_row)
        x = self.rows.index_select(0, (first_row.view(n, 1) + self.row_steps).view(-1)).view(n, -1)
        x.scatter_(1, hole.view(n, 1) + self.hole_steps, self.fill.expand(n, -1))
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device).copy_(x)
        torch.addcmul(self.shift, out, self.scale, out=out)
        return out.view(n, CROP, CROP, 3).permute(0, 3, 1, 2)

    def apply(self, idx: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augment images ``idx`` (CPU int64) of the held set with parameters ``p``."""
        return self.gather(self.offsets(idx, p).to(self.rows.device))

    def __call__(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(idx, self.sample(len(idx), generator))
