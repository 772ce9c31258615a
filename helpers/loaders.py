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
from .model import MEMORY_FORMAT

Batch = tuple[torch.Tensor, torch.Tensor]


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def check_batch_size(batch_size: int, n: int) -> None:
    """A job checks its batch against its data once, before anything is written
    (``helpers.run.checked_data``); the loaders below trust it."""
    if batch_size > n:
        raise UserError(f"--batch-size {batch_size} is larger than the training set ({n} images); "
                        "lower --batch-size or use more data")


class BatchedTrainLoader:
    """The training set held once on ``device`` as padded uint8; augmented per batch there."""

    def __init__(self, split: Split, batch_size: int, device: torch.device, seed: int = 0) -> None:
        self.augment = BatchedAugment(split.x, device)
        self.labels = torch.as_tensor(split.y).to(device)
        self.batch_size, self.seed, self.device = batch_size, seed, device

    def __len__(self) -> int:
        return len(self.labels) // self.batch_size  # drop the last partial batch: BN sees full batches

    def plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """An epoch's image order and augmentation offsets, drawn on the CPU.

        One generator seeded with (seed, epoch), drawn in the same order as a batch-by-batch
        loop (the order, then each batch's parameters), so every device sees the same batches.
        """
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        order = torch.randperm(len(self.labels), generator=g)[: len(self) * self.batch_size]
        chunks = order.split(self.batch_size)
        offsets = torch.cat([self.augment.offsets(idx, self.augment.sample(len(idx), g)) for idx in chunks], 1)
        return order, offsets

    def epoch(self, epoch: int) -> Iterator[Batch]:
        order, offsets = self.plan(epoch)
        # One host-to-device copy an epoch (pinned, so it does not stall the GPU's queue);
        # then each batch is slices of device tensors: no per-step transfer or sync.
        pin = self.device.type == "cuda"
        order = (order.pin_memory() if pin else order).to(self.device, non_blocking=True)
        offsets = (offsets.pin_memory() if pin else offsets).to(self.device, non_blocking=True)
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            x = self.augment.gather(offsets[:, sl])
            yield (x.contiguous(memory_format=MEMORY_FORMAT),  # already so: a no-op
                   self.labels.index_select(0, order[sl]))


class _AlbumentationsDataset(torch.utils.data.Dataset):
    def __init__(self, split: Split, transform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(image=self.split.x[i])["image"], int(self.split.y[i])


class _ReseedWorker:
    """DataLoader ``worker_init_fn``: worker k reseeds its copy of the transform with seed + 1 + k.
    A class, not a closure: spawn-based platforms (macOS, Windows) pickle it into each worker."""

    def __init__(self, transform, seed: int) -> None:
        self.transform, self.seed = transform, seed

    def __call__(self, worker_id: int) -> None:
        reseed(self.transform, self.seed + 1 + worker_id)


class AlbumentationsTrainLoader:
    """The reference path: per-image albumentations in DataLoader workers."""

    def __init__(self, split: Split, batch_size: int, device: torch.device, seed: int = 0,
                 num_workers: int = 2) -> None:
        self.dataset = _AlbumentationsDataset(split, albumentations_train())
        self.batch_size, self.seed, self.device, self.num_workers = batch_size, seed, device, num_workers

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def epoch(self, epoch: int) -> Iterator[Batch]:
        s = epoch_seed(self.seed, epoch)
        transform = self.dataset.transform
        reseed(transform, s)  # used as is when num_workers == 0
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=True, drop_last=True,
            num_workers=self.num_workers, worker_init_fn=_ReseedWorker(transform, s),
            generator=torch.Generator().manual_seed(s), pin_memory=self.device.type == "cuda",
            persistent_workers=False)
        for x, y in loader:
            yield (x.to(self.device, non_blocking=True).contiguous(memory_format=MEMORY_FORMAT),
                   y.to(self.device, non_blocking=True))


class EvalLoader:
    """Normalized, un-augmented images in large batches, held on ``device``."""

    def __init__(self, split: Split, device: torch.device, batch_size: int = 1024) -> None:
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

