"""Re-encode the JPEG copy of CIFAR-10 at other JPEG qualities, and measure how far each moves.

    python -m benchmarks.jpeg_levels --data-dir ~/data/cifar10 --out ~/data/jpeg --qualities 95 50 30 \
        --json results/ladder/jpeg_psnr.json

Each level is the copy's decoded pixels encoded again by Pillow at quality Q with 4:2:0 chroma
(as the copy was), in the class-folder layout ``OUT/q<Q>/train/<class>/NNNNN.jpg`` that
``helpers train --data-dir OUT/q<Q>`` reads. The JSON records, per level, the mean PSNR of its
images against the copy (train and test), and the mean file size: a second lossy pass moves the
pixels further from the original, so a slope of accuracy against PSNR estimates what the first
pass (quality 75) cost. Never commit the images: they reproduce the data set.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import parser
from helpers.config import CIFAR10_CLASSES
from helpers.data import load_cifar10


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Per-image PSNR in dB (8-bit peak); identical images count as 100 dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def write_level(split_x: np.ndarray, split_y: np.ndarray, folder: Path, quality: int) -> dict:
    psnrs, sizes = [], []
    for c in CIFAR10_CLASSES:
        (folder / c).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(split_x, split_y)):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=2)
        (folder / CIFAR10_CLASSES[label] / f"{i:05d}.jpg").write_bytes(buf.getvalue())
        back = np.asarray(Image.open(buf).convert("RGB"))
        psnrs.append(psnr(img, back))
        sizes.append(len(buf.getvalue()))
    return {"images": len(split_y), "psnr_db_mean": float(np.mean(psnrs)), "bytes_mean": float(np.mean(sizes))}


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, "python -m benchmarks.jpeg_levels")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--qualities", type=int, nargs="+", default=[95, 50, 30])
    p.add_argument("--json", type=Path, required=True)
    a = p.parse_args(argv)
    data = load_cifar10(a.data_dir, download=False)
    levels = json.loads(a.json.read_text())["levels"] if a.json.is_file() else {}
    for q in a.qualities:
        root = a.out / f"q{q}"
        if str(q) in levels and (root / "test").is_dir():
            print(f"q{q}: done already ({root})")
            continue
        levels[str(q)] = {"quality": q, "subsampling": "4:2:0", "encoder": f"Pillow {Image.__version__}",
                          "train": write_level(data.train.x, data.train.y, root / "train", q),
                          "test": write_level(data.test.x, data.test.y, root / "test", q)}
        print(f"q{q}: PSNR vs the copy {levels[str(q)]['train']['psnr_db_mean']:.2f} dB (train)")
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"reference": "the quality-75 copy (docs/RESULTS.md, The data)", "levels": levels}, indent=1))


if __name__ == "__main__":
    main()
