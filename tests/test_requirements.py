"""requirements.txt leaves Colab's own torch, torchvision and OpenCV alone, and asks for the
albumentations release whose transforms accept strict=."""
import re
from pathlib import Path

REQS = Path(__file__).parents[1] / "requirements.txt"


def requirements() -> dict[str, str]:
    out = {}
    for line in REQS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name = re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()
            out[name] = line[len(name):].strip()
    return out


def test_preinstalled_gpu_builds_are_not_pinned():
    reqs = requirements()
    for name in ("torchvision", "opencv-python-headless"):
        assert reqs[name] == "", f"{name} is pinned ({reqs[name]}): pip would replace Colab's build"
    # a floor only: any newer build (Colab's) satisfies it, so pip leaves it alone
    assert reqs["torch"] == ">=2.4", reqs["torch"]
    import torch

    assert hasattr(torch.amp, "GradScaler")  # what the floor is for
    assert "opencv-python" not in reqs  # a second OpenCV wheel would overwrite the first one's cv2


def test_albumentations_floor_has_transform_level_strict():
    spec = requirements()["albumentations"]
    floor = re.search(r">=\s*([\d.]+)", spec).group(1)
    assert tuple(map(int, floor.split("."))) >= (2, 0, 3) and "<3" in spec.replace(" ", "")
    import albumentations as A

    A.HorizontalFlip(p=0.5, strict=True)  # the installed release accepts it
