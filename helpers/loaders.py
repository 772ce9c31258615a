"""Batches for training and evaluation, each epoch reproducible from (seed, epoch).

Every epoch draws its shuffle and augmentation from a generator seeded with
``(seed, epoch)`` only, so a run resumed at an epoch boundary sees exactly the
batches the uninterrupted run saw.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .augment import BatchedAugment, albumentations_train, normalize, reseed
from .data import Split
from .errors import UserError

Batch = tuple[torch.Tensor, torch.Tensor]
# Batches come in the model's memory format (channels_last everywhere: see run.build_model).
MEMORY_FORMAT = torch.channels_last


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def check_batch_size(batch_size: int, n: int) -> None:
    if batch_size > n:
        raise UserError(f"--batch-size {batch_size} is larger than the training set ({n} images); "
                        "lower --batch-size or use more data")


class BatchedTrainLoader:
    """The training set held once on ``device`` as padded uint8; augmented per batch there."""

    def __init__(self, split: Split, batch_size: int, device: torch.device, seed: int = 0) -> None:
        check_batch_size(batch_size, len(split))
        self.augment = BatchedAugment(split.x, device)
        self.labels = torch.as_tensor(split.y)
        self.batch_size, self.seed, self.device = batch_size, seed, device

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size  # drop the last partial batch: BN sees full batches

    def epoch(self, epoch: int) -> Iterator[Batch]:
        # Indices and parameters are drawn on the CPU (one generator, reproducible on any
        # device); the augmentation moves one small tensor of offsets to the device per batch.
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(len(self.labels), generator=g)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.augment(idx, g)
            yield (x.contiguous(memory_format=MEMORY_FORMAT),  # already so: a no-op
                   self.labels.index_select(0, idx).to(self.device, non_blocking=True))


class _AlbumentationsDataset(torch.utils.data.Dataset):
    def __init__(self, split: Split, transform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(image=self.split.x[i])["image"], int(self.split.y[i])


class AlbumentationsTrainLoader:
    """The reference path: per-image albumentations in DataLoader workers."""

    def __init__(self, split: Split, batch_size: int, device: torch.device, seed: int = 0,
                 num_workers: int = 2) -> None:
        check_batch_size(batch_size, len(split))
        self.dataset = _AlbumentationsDataset(split, albumentations_train())
        self.batch_size, self.seed, self.device, self.num_workers = batch_size, seed, device, num_workers

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def epoch(self, epoch: int) -> Iterator[Batch]:
        s = epoch_seed(self.seed, epoch)
        transform = self.dataset.transform
        reseed(transform, s)  # used as is when num_workers == 0

        def init_worker(worker_id: int) -> None:
            reseed(transform, s + 1 + worker_id)

        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=True, drop_last=True,
            num_workers=self.num_workers, worker_init_fn=init_worker,
            generator=torch.Generator().manual_seed(s), pin_memory=self.device.type == "cuda",
            persistent_workers=False)
        for x, y in loader:
            yield (x.to(self.device, non_blocking=True).contiguous(memory_format=MEMORY_FORMAT),
                   y.to(self.device, non_blocking=True))


class EvalLoader:
    """Normalized, un-augmented images in large batches, held on ``device``."""

    def __init__(self, split: Split, device: torch.device, batch_size: int = 1024) -> None:
        self.split = split
        chunks = [normalize(torch.as_tensor(split.x[i:i + 8192])) for i in range(0, len(split), 8192)]
        self.images = torch.cat(chunks).to(device)
        self.labels = torch.as_tensor(split.y).to(device)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        for i in range(0, len(self.labels), self.batch_size):
            yield (self.images[i:i + self.batch_size].contiguous(memory_format=MEMORY_FORMAT),
                   self.labels[i:i + self.batch_size])


def make_train_loader(kind: str, split: Split, batch_size: int, device: torch.device, seed: int,
                      num_workers: int = 2):
    if kind == "albumentations":
        return AlbumentationsTrainLoader(split, batch_size, device, seed, num_workers)
    return BatchedTrainLoader(split, batch_size, device, seed)

