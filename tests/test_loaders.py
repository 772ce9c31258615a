"""helpers.loaders: training batches (batched and albumentations, each epoch from (seed, epoch)) and
evaluation batches."""
import numpy as np
import pytest
import torch


@pytest.mark.slow
def test_albumentations_workers_give_the_same_epoch_for_the_same_seed_and_a_new_one_for_the_next():
    """Worker k reseeds from (seed, epoch) and k: two runs draw the same batches; epochs differ."""
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 64))
    a = AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=2)
    b = AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=2)
    first = [x for x, _ in a.epoch(0)]
    assert all(torch.equal(x, y) for x, (y, _) in zip(first, b.epoch(0)))
    assert not all(torch.equal(x, y) for x, (y, _) in zip(first, a.epoch(1)))
    other_seed = AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=6, num_workers=2)
    assert not all(torch.equal(x, y) for x, (y, _) in zip(first, other_seed.epoch(0)))


def test_each_worker_draws_its_own_augmentation():
    """Identical images: batch 0 (worker 0) and batch 1 (worker 1) differ only if the workers'
    transforms are seeded apart; a worker's two batches differ too."""
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader

    img = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    split = Split(np.repeat(img, 64, axis=0), np.zeros(64, dtype=np.int64))
    batches = [x for x, _ in AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=2).epoch(0)]
    assert not torch.equal(batches[0], batches[1]) and not torch.equal(batches[0], batches[2])


def test_inside_a_worker_each_image_keeps_its_label_and_worker_k_draws_from_seed_plus_1_plus_k():
    """What DataLoader workers run, called here in this process (mutation testing sees only this)."""
    from helpers.augment import albumentations_train, reseed
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, EvalLoader, _AlbumentationsDataset, _ReseedWorker

    rng = np.random.default_rng(2)
    split = Split(rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), np.arange(50) % 10)
    ds = _AlbumentationsDataset(split, albumentations_train())
    x, y = ds[13]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 3 and type(y) is int and len(ds) == 50
    worker, twin = albumentations_train(), albumentations_train()
    _ReseedWorker(worker, 5)(2)
    reseed(twin, 8)
    img = split.x[0]
    draws = [(worker(image=img)["image"], twin(image=img)["image"]) for _ in range(4)]
    assert all(np.array_equal(a, b) for a, b in draws)
    reseed(twin, 7)
    assert not all(np.array_equal(worker(image=img)["image"], twin(image=img)["image"]) for _ in range(4))
    assert len(AlbumentationsTrainLoader(split, 16, torch.device("cpu"))) == 3  # the partial batch dropped
    assert len(EvalLoader(split, torch.device("cpu"), batch_size=16)) == 4     # the partial batch kept
    assert len(EvalLoader(split, torch.device("cpu"), batch_size=25)) == 2


@pytest.mark.filterwarnings("error")  # e.g. memory pinning asked for on a machine without a GPU
def test_an_albumentations_epoch_is_shuffled_whole_batches_each_from_its_workers_own_stream():
    """Batch k comes from worker k % 2, whose transform is reseeded with the epoch's seed + 1 + k % 2;
    with no workers, from the transform reseeded with the epoch's seed itself."""
    from helpers.augment import albumentations_train, reseed
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, epoch_seed

    x = np.random.default_rng(3).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    split = Split(x, np.arange(50))  # a label is the image's index

    def expected(labels_in_batches, seeds):
        out = []
        for labels, seed in zip(labels_in_batches, seeds):
            t = albumentations_train()
            reseed(t, seed)
            out.append(torch.stack([t(image=x[int(i)])["image"] for i in labels]))
        return out

    s = epoch_seed(5, 1)
    for workers, seeds in ((2, [s + 1, s + 2]), (0, [s])):
        batches = list(AlbumentationsTrainLoader(split, 16, torch.device("cpu"), seed=5, num_workers=workers).epoch(1))
        labels = [y for _, y in batches]
        assert [tuple(b.shape) for b, _ in batches] == [(16, 3, 32, 32)] * 3  # the partial batch dropped
        order = torch.cat(labels)
        assert len(set(order.tolist())) == 48 and order.tolist() != sorted(order.tolist())
        got = [b for b, _ in batches][:len(seeds)]
        if workers:
            for g, e in zip(got, expected(labels[:2], seeds)):
                assert torch.equal(g, e)
        else:  # one stream for all three batches
            t = albumentations_train()
            reseed(t, s)
            assert torch.equal(torch.cat([b for b, _ in batches]),
                               torch.stack([t(image=x[int(i)])["image"] for i in order]))


def test_the_loader_kind_picks_the_loader_with_its_settings():
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, BatchedTrainLoader, make_train_loader

    split = Split(np.zeros((40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 10)
    cpu = torch.device("cpu")
    a = make_train_loader("albumentations", split, 8, cpu, 7)
    assert isinstance(a, AlbumentationsTrainLoader)
    assert (a.batch_size, a.seed, a.device, a.num_workers) == (8, 7, cpu, 2)
    assert len(a.dataset) == 40 and make_train_loader("albumentations", split, 8, cpu, 7, 0).num_workers == 0
    b = make_train_loader("batched", split, 8, cpu, 7)
    assert isinstance(b, BatchedTrainLoader) and (b.batch_size, b.seed, b.device) == (8, 7, cpu) and len(b) == 5


@pytest.mark.slow
def test_evaluation_batches_hold_every_test_image_once_in_order():
    from helpers.augment import normalize
    from helpers.data import Split
    from helpers.loaders import AlbumentationsTrainLoader, EvalLoader

    n = 8200  # normalised 8,192 at a time: two chunks
    x = np.random.default_rng(4).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    split = Split(x, np.arange(n) % 10)
    loader = EvalLoader(split, torch.device("cpu"))
    assert loader.batch_size == 1024 and len(loader) == 9
    torch.testing.assert_close(loader.images, normalize(torch.as_tensor(x)), rtol=0, atol=0)
    small = EvalLoader(Split(x[:50], np.arange(50)), torch.device("cpu"), batch_size=16)
    batches = list(small)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    assert torch.cat([y for _, y in batches]).tolist() == list(range(50))
    assert torch.equal(torch.cat([b for b, _ in batches]), small.images)
    a = AlbumentationsTrainLoader(Split(x[:50], np.arange(50)), 16, torch.device("cpu"))
    assert (a.seed, a.num_workers) == (0, 2)


class CopiesToCuda:
    """What a loader asks of its copies to a CUDA device, seen on a CPU-only machine: tensors
    sent there stay on the CPU, and each ``pin_memory`` and ``.to(cuda, ...)`` is recorded."""

    def __init__(self, monkeypatch) -> None:
        self.pinned, self.copies, self.loaders = 0, [], []
        real_to, real_loader = torch.Tensor.to, torch.utils.data.DataLoader

        def to(t, *args, **kwargs):
            if args and isinstance(args[0], torch.device) and args[0].type == "cuda":
                self.copies.append(kwargs)
                return t
            return real_to(t, *args, **kwargs)

        def pin_memory(t):
            self.pinned += 1
            return t

        def loader(*args, **kwargs):
            self.loaders.append(dict(kwargs))
            return real_loader(*args, **{**kwargs, "pin_memory": False})  # nothing to pin for here

        monkeypatch.setattr(torch.Tensor, "to", to)
        monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
        monkeypatch.setattr(torch.utils.data, "DataLoader", loader)


@pytest.mark.slow
def test_copies_to_a_gpu_are_pinned_and_do_not_block(split, monkeypatch):
    """On CUDA, the batched loader pins the epoch's order and offsets and copies them without
    blocking; the albumentations loader's DataLoader pins its batches, each copied without blocking."""
    from helpers.loaders import AlbumentationsTrainLoader, BatchedTrainLoader

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    batched, albumentations = BatchedTrainLoader(split, 128, cpu), AlbumentationsTrainLoader(split, 128, cpu, num_workers=0)
    seen = CopiesToCuda(monkeypatch)
    batched.device = albumentations.device = cuda  # made on the CPU, told the run is on CUDA
    assert len(list(batched.epoch(0))) == 4
    assert seen.pinned == 2 and seen.copies == [{"non_blocking": True}] * 2
    seen.copies.clear()
    assert len(list(albumentations.epoch(0))) == 4
    assert [(k["pin_memory"], k["persistent_workers"]) for k in seen.loaders] == [(True, False)]
    assert seen.copies == [{"non_blocking": True}] * 8  # images and labels, 4 batches


def test_copies_on_the_cpu_are_not_pinned(split, monkeypatch):
    from helpers.loaders import AlbumentationsTrainLoader, BatchedTrainLoader

    cpu = torch.device("cpu")
    seen = CopiesToCuda(monkeypatch)
    list(BatchedTrainLoader(split, 128, cpu).epoch(0))
    list(AlbumentationsTrainLoader(split, 128, cpu, num_workers=0).epoch(0))
    assert seen.pinned == 0 and [k["pin_memory"] for k in seen.loaders] == [False]
