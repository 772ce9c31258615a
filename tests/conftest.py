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


@pytest.fixture(scope="session")
def class_tree(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("cifar") / "cifar10", 200, 100)


@pytest.fixture
def split() -> Split:
    x, y = synthetic_images(512)
    return Split(x, y)


def fail_in_epoch(monkeypatch, epoch: int, error: BaseException) -> None:
    """The job's ``train_epoch`` raises ``error`` when it reaches ``epoch``; earlier epochs train
    (Ctrl-C, a Colab disconnect or a divergence, at an epoch of the test's choosing)."""
    import helpers.run as run

    real = run.train_epoch

    def patched(model, batches, optimizer, scheduler, precision, ep, progress=None, *extra):
        if ep == epoch:
            raise error
        return real(model, batches, optimizer, scheduler, precision, ep, progress, *extra)
    monkeypatch.setattr(run, "train_epoch", patched)


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
