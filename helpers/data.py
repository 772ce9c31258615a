"""CIFAR-10 as uint8 arrays, from a local copy or torchvision's download.

Three sources, tried in this order:

1. a class-folder tree: ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``
   (also ``DIR/cifar10/train/...``, as an archive holding a ``cifar10`` folder unpacks);
2. torchvision's folder ``DIR/cifar-10-batches-py``;
3. torchvision's download into ``DIR`` (needs the internet).

The whole set is small (150 MB as uint8), so it is decoded once into memory;
augmentation happens later, per batch (see :mod:`helpers.augment`).

Decoding the class-folder copy's 60,000 JPEGs takes ~16 s on a 2-core CPU, 11x a cached
load (docs/RESULTS.md, *Loading the data*), so the decoded arrays are cached beside the split
folders (``DIR/.helpers-cache/<split>.npz``), keyed by the split's file list, sizes and
modification times and checked by a CRC of the arrays: a changed folder or a damaged cache
is rebuilt, with one line saying so, and never used. Where the data folder is read-only,
the images are decoded on every load.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import CIFAR10_CLASSES, TrainConfig
from .errors import Log, UserError

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


CACHE_DIR = ".helpers-cache"


def _listing_key(paths: list[Path], root: Path) -> str:
    """A digest of every image's relative path, size and modification time."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _crc(x: np.ndarray, y: np.ndarray) -> int:
    return zlib.crc32(y.tobytes(), zlib.crc32(x.tobytes()))


def read_cache(path: Path, key: str, log: Log) -> Split | None:
    """The cached split if ``path`` holds one for ``key`` and intact; else None (and one line why)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("key") != key:
                log(f"note: the cache {path} is stale (the image folder changed); decoding the images again")
                return None
            x, y = z["x"], z["y"]
    except Exception as e:  # truncated zip, missing member, bad JSON: all mean a damaged file
        log(f"note: the cache {path} is unreadable ({e.__class__.__name__}); decoding the images again")
        return None
    if meta.get("crc") != _crc(x, y) or x.dtype != np.uint8 or x.shape[1:] != (32, 32, 3) or len(x) != len(y):
        log(f"note: the cache {path} is corrupt (checksum or shape mismatch); decoding the images again")
        return None
    return Split(x, y)


def write_cache(path: Path, key: str, split: Split, log: Log) -> None:
    """Write atomically (temporary file, fsync, rename); a read-only folder only costs speed."""
    tmp = path.with_name(path.name + ".tmp")
    meta = json.dumps({"key": key, "crc": _crc(split.x, split.y)}).encode()
    try:
        path.parent.mkdir(exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, x=split.x, y=split.y, meta=np.frombuffer(meta, dtype=np.uint8))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        log(f"note: cannot write a decoded-data cache in {path.parent} ({e.strerror}); "
            "the images will be decoded on every load")


def _class_folder_paths(root: Path) -> tuple[list[Path], list[int]]:
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
    return paths, labels


def _class_folder_split(root: Path, log: Log = print) -> Split:
    """One split of a class-folder tree, from the cache when it matches the folder."""
    paths, labels = _class_folder_paths(root)
    key = _listing_key(paths, root)
    cache = root.parent / CACHE_DIR / f"{root.name}.npz"
    split = read_cache(cache, key, log)
    if split is not None:
        return split
    # PIL releases the GIL while decoding, so threads give a real speed-up.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        images = list(pool.map(_read_image, paths))
    split = Split(np.stack(images), np.asarray(labels, dtype=np.int64))
    write_cache(cache, key, split, log)
    return split


def find_class_folder_root(data_dir: Path) -> Path | None:
    """The folder holding train/ and test/ class folders, or None; half a tree is an error."""
    for cand in (data_dir, data_dir / "cifar10"):
        has = [name for name in ("train", "test") if (cand / name).is_dir()]
        if len(has) == 2:
            return cand
        if has:
            other = "test" if has == ["train"] else "train"
            raise UserError(f"{cand} has {has[0]}/ but no {other}/: a class-folder copy needs both "
                            f"train/<class>/ and test/<class>/; add {cand / other} or point --data-dir elsewhere")
    return None


def _torchvision_split(data_dir: Path, train: bool, download: bool) -> Split:
    from torchvision.datasets import CIFAR10

    ds = CIFAR10(str(data_dir), train=train, download=download)
    return Split(np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))


def _local_torchvision_copy(data_dir: Path) -> Cifar10:
    try:
        train = _torchvision_split(data_dir, True, False)
        test = _torchvision_split(data_dir, False, False)
    except Exception as e:  # torchvision's integrity check, unpickling, truncated files
        raise UserError(f"{data_dir / 'cifar-10-batches-py'} is incomplete or corrupt ({_cause(e)}); "
                        "delete that folder to download it again, or point --data-dir at a good copy") from None
    return Cifar10(train, test, source=f"torchvision copy in {data_dir}")


def _cause(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{e.__class__.__name__}: {text[:200]}" if text else e.__class__.__name__


def _remove_new(folder: Path, existed: bool, before: set[Path]) -> None:
    """Delete what a failed download created: the folder, or the entries it did not hold."""
    if not existed:
        new = {folder}
    else:
        new = set(folder.iterdir()) - before if folder.is_dir() else set()
    for p in new:
        _remove(p)


def _remove(p: Path) -> None:
    """Best effort: an entry that cannot go (in use, already gone) must not hide the download's
    own error, which is the line the user needs. A link is removed, never what it points to."""
    import shutil

    with contextlib.suppress(OSError):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def load_cifar10(data_dir: str | os.PathLike, download: bool = True, log: Log = print) -> Cifar10:
    """Load CIFAR-10 from ``data_dir`` (see the module doc for the layouts)."""
    data_dir = Path(data_dir)
    root = find_class_folder_root(data_dir)
    if root is not None:
        return Cifar10(_class_folder_split(root / "train", log), _class_folder_split(root / "test", log),
                       source=f"class folders in {root}")
    if (data_dir / "cifar-10-batches-py").is_dir():
        return _local_torchvision_copy(data_dir)
    if not download:
        raise UserError(f"no CIFAR-10 in {data_dir}: expected train/<class>/ and test/<class>/ folders "
                        "or cifar-10-batches-py; pass --data-dir pointing at a local copy")
    existed = data_dir.exists()
    before = set(data_dir.iterdir()) if existed and data_dir.is_dir() else set()
    created = data_dir  # the topmost folder mkdir will create
    while not existed and not created.parent.exists():
        created = created.parent
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        train = _torchvision_split(data_dir, True, True)
        test = _torchvision_split(data_dir, False, True)
    except Exception as e:  # no network, disk full, checksum, permissions: say which
        _remove_new(data_dir if existed else created, existed, before)  # a failed download leaves nothing
        raise UserError(
            f"could not download CIFAR-10 into {data_dir} ({_cause(e)}); point --data-dir at a local copy "
            "(train/<class>/ and test/<class>/ folders, or a cifar-10-batches-py folder)") from None
    return Cifar10(train, test, source=f"torchvision download into {data_dir}")


def load_data(cfg: TrainConfig, log: Log = print, loaded: Cifar10 | None = None) -> Cifar10:
    """CIFAR-10 as a run's settings ask for it: ``data_dir``, ``download`` and the ``limit_*`` subsets.
    ``loaded``: the whole copy, already read (a sweep's worker reads the folder once for many runs)."""
    full = loaded if loaded is not None else load_cifar10(cfg.data_dir, download=cfg.download, log=log)
    return Cifar10(full.train.subset(cfg.limit_train, cfg.seed), full.test.subset(cfg.limit_test, cfg.seed),
                   full.classes, full.source)
