"""What a run's numbers depend on besides its settings and seed: recorded in every run.

On one machine a CPU run repeats bit for bit for a seed; across machines only within the seed
noise, because oneDNN's kernels (AVX2 or AVX-512), the thread count and the library versions
change the rounding. Each run's ``config.json`` records them (``resolved``), and
``benchmarks.collect_runs`` carries them into ``results/``.
"""
from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import torch

PACKAGES = ("torch", "torchvision", "numpy", "pillow", "albumentations")


def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo's "model name"), or what the platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    """cpu_model, cpu_capability (the kernels torch runs: e.g. AVX2, AVX512), cpu_threads, versions."""
    return {"cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_threads": torch.get_num_threads(), "versions": versions()}
