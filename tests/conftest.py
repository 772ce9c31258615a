"""Shared fixtures: small synthetic CIFAR-like data made in the test, never downloaded."""
from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.config import CIFAR10_CLASSES
from helpers.data import Split
from helpers.loop import Callback


def pytest_collection_modifyitems(items):
    """A whole training job is slow: ``e2e`` implies ``slow`` (``pytest -m "not slow"``: the fast lane)."""
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 32x32 RGB images: each class has its own colour and stripe, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    base = rng.integers(40, 216, size=(10, 3))
    x = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for i, c in enumerate(y):
        img = np.full((32, 32, 3), base[c], dtype=np.int32)
        img[:, (3 * c) % 32:(3 * c) % 32 + 3] = 255 - base[c]
        img += rng.integers(-30, 31, size=img.shape)
        x[i] = np.clip(img, 0, 255)
    return x, y.astype(np.int64)


def write_class_folders(root: Path, n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        x, y = synthetic_images(n, s)
        for c in CIFAR10_CLASSES:
            (root / split / c).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(x, y)):
            Image.fromarray(img).save(root / split / CIFAR10_CLASSES[label] / f"{i:05d}.png")
    return root


def write_torchvision_copy(root: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """The cifar-10-batches-py layout torchvision reads (data as 3072-byte CHW rows)."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    x, y = synthetic_images(n_train + n_test)
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    per = -(-n_train // 5)
    for b in range(5):
        sl = slice(b * per, min((b + 1) * per, n_train))
        with open(d / f"data_batch_{b + 1}", "wb") as f:
            pickle.dump({"data": rows[sl], "labels": y[sl].tolist()}, f)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"data": rows[n_train:], "labels": y[n_train:].tolist()}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES)}, f)
    return root


@pytest.fixture(autouse=True)
def in_its_own_folder(tmp_path, monkeypatch):
    """Every test runs in its own empty folder: what code writes to a relative path (a default
    ``runs/`` folder, or a path a mutant made relative) lands there, never where another test
    could read it."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def cpu_without_bf16(monkeypatch):
    """Every test sees a CPU without bf16 hardware, so 'auto' is fp32 on the CPU and the suite
    computes the same numbers on an AVX2 machine and on one with AVX-512 BF16; a test about the
    precision rule says what the CPU has (:func:`pretend_cpu`), and bf16 runs ask for it."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


@pytest.fixture(scope="session")
def class_tree(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("cifar") / "cifar10", 200, 100)


@pytest.fixture
def split() -> Split:
    x, y = synthetic_images(512)
    return Split(x, y)


class Stop(Callback):
    """Raises ``error`` when the loop starts epoch ``epoch`` (1-based), before that epoch trains:
    earlier epochs are trained and saved, that one is not (Ctrl-C, a Colab disconnect, a
    divergence or a crash at an epoch of the test's choosing)."""

    def __init__(self, epoch: int, error: BaseException) -> None:
        self.epoch, self.error = epoch, error

    def on_epoch_start(self, epoch: int) -> None:
        if epoch == self.epoch:
            raise self.error


class Watch(Callback):
    """Records each epoch the loop starts (and calls ``also(epoch)`` there when given)."""

    def __init__(self, also=None) -> None:
        self.started: list[int] = []
        self.also = also

    def on_epoch_start(self, epoch: int) -> None:
        self.started.append(epoch)
        if self.also:
            self.also(epoch)


def observe_runs(monkeypatch, *callbacks: Callback) -> None:
    """Every run trained while the test lasts (through the command line, the notebook or a
    sweep) calls these after its own callbacks: the loop's observers, not a patched module."""
    from helpers.run import Run

    monkeypatch.setattr(Run, "callbacks", (*Run.callbacks, *callbacks))


def fail_in_epoch(monkeypatch, epoch: int, error: BaseException) -> None:
    """Every run trained while the test lasts stops with ``error`` at the start of ``epoch``."""
    observe_runs(monkeypatch, Stop(epoch, error))


def write_lock(folder: Path, **holder) -> None:
    """A run folder's lock file as another writer left it (host, pid, time)."""
    import json

    from helpers.checkpoint import LOCK

    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK).write_text(json.dumps(holder))


class KnownPredictions(torch.nn.Module):
    """Predicts the class written in each image's first pixel, 50 logits up; one parameter to train
    (it shifts every logit alike, so its gradient is zero and the predictions never move)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float() * 50 + self.w


def pretend_cuda_gpu(monkeypatch, capability):
    """torch reports a CUDA GPU of this compute capability (on a T4, bf16 tensors can be made:
    emulation works there, so the emulation probe answers yes, as it does on the real card)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda d=None: SimpleNamespace(major=capability[0], minor=capability[1]))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: capability)
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda d: True, raising=False)
    monkeypatch.setattr(torch.cuda.amp.common, "amp_definitely_not_available", lambda: False)


def pretend_cpu(monkeypatch, avx512_bf16: bool, amx: bool = False):
    """torch reports these CPU flags (as cpuinfo reads CPUID); oneDNN's own bf16 check says yes, as
    it does on any AVX-512 CPU, bf16 in hardware or not."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)


def numbered_split(n: int):
    """A split whose image i is filled with i and labelled i: an image and its label can be matched."""
    from helpers.data import Split

    return Split(np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8),
                 np.arange(n, dtype=np.int64))
