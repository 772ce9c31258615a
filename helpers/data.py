"""CIFAR-10 as uint8 arrays, from a local copy or torchvision's download.

Three sources, tried in this order:

1. a class-folder tree: ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``
   (also ``DIR/cifar10/train/...``, as ``shared/data``'s archive unpacks);
2. torchvision's folder ``DIR/cifar-10-batches-py``;
3. torchvision's download into ``DIR`` (needs the internet).

The whole set is small (150 MB as uint8), so it is decoded once into memory;
augmentation happens later, per batch (see :mod:`helpers.augment`).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import CIFAR10_CLASSES
from .errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Split:
    """One split: images ``x`` (N, 32, 32, 3) uint8 RGB and labels ``y`` (N,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int, seed: int = 0) -> "Split":
        """A seeded random subset of ``n`` images, in their original order."""
        if n <= 0 or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:n])
        return Split(self.x[idx], self.y[idx])


@dataclass
class Cifar10:
    train: Split
    test: Split
    classes: tuple[str, ...] = CIFAR10_CLASSES
    source: str = ""


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB" or im.size != (32, 32):
                raise UserError(
                    f"{path}: image is {im.size[0]}x{im.size[1]} {im.mode}; CIFAR-10 images must be "
                    "32x32 RGB - convert or remove it")
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UserError(f"{path}: cannot read image ({e.__class__.__name__}); "
                        "replace or remove the empty or corrupt file") from None


def _class_folder_split(root: Path) -> Split:
    if not root.is_dir():
        raise UserError(f"missing folder {root}: a class-folder copy needs train/<class>/ and test/<class>/")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    missing = [c for c in CIFAR10_CLASSES if c not in found]
    extra = [c for c in found if c not in CIFAR10_CLASSES]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(extra))
        raise UserError(f"{root}: class folders must be the ten CIFAR-10 classes ({'; '.join(parts)})")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(CIFAR10_CLASSES):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{root / name}: no images in this class folder")
        paths += files
        labels += [label] * len(files)
    # PIL releases the GIL while decoding, so threads give a real speed-up.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        images = list(pool.map(_read_image, paths))
    return Split(np.stack(images), np.asarray(labels, dtype=np.int64))


def find_class_folder_root(data_dir: Path) -> Path | None:
    """The folder holding train/ and test/ class folders, or None."""
    for cand in (data_dir, data_dir / "cifar10"):
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    return None


def _torchvision_split(data_dir: Path, train: bool, download: bool) -> Split:
    from torchvision.datasets import CIFAR10

    ds = CIFAR10(str(data_dir), train=train, download=download)
    return Split(np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))


def load_cifar10(data_dir: str | os.PathLike, download: bool = True) -> Cifar10:
    """Load CIFAR-10 from ``data_dir`` (see the module doc for the layouts)."""
    data_dir = Path(data_dir)
    root = find_class_folder_root(data_dir)
    if root is not None:
        return Cifar10(_class_folder_split(root / "train"), _class_folder_split(root / "test"),
                       source=f"class folders in {root}")
    if (data_dir / "cifar-10-batches-py").is_dir():
        return Cifar10(_torchvision_split(data_dir, True, False), _torchvision_split(data_dir, False, False),
                       source=f"torchvision copy in {data_dir}")
    if not download:
        raise UserError(f"no CIFAR-10 in {data_dir}: expected train/<class>/ and test/<class>/ folders "
                        "or cifar-10-batches-py; pass --data-dir pointing at a local copy")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        train = _torchvision_split(data_dir, True, True)
        test = _torchvision_split(data_dir, False, True)
    except UserError:
        raise
    except Exception as e:  # urllib / ssl / socket errors all mean "offline" to the user
        raise UserError(
            f"could not download CIFAR-10 into {data_dir} ({e.__class__.__name__}); offline? "
            "point --data-dir at a local copy (train/<class>/ and test/<class>/ folders, "
            "or a cifar-10-batches-py folder)") from None
    return Cifar10(train, test, source=f"torchvision download into {data_dir}")
