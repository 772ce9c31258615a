from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import numbered_split, synthetic_images, write_class_folders, write_torchvision_copy
from helpers.config import CIFAR10_CLASSES
from helpers.data import load_cifar10
from helpers.errors import UserError


def test_class_folder_layout(class_tree):
    d = load_cifar10(class_tree, download=False)
    assert d.train.x.shape == (200, 32, 32, 3) and d.train.x.dtype == np.uint8
    assert len(d.test) == 100 and set(d.train.y) == set(range(10))
    x, y = synthetic_images(200, 0)
    # files are read back in class order; every image is its lossless PNG
    for label in range(10):
        assert {a.tobytes() for a in d.train.x[d.train.y == label]} == {a.tobytes() for a in x[y == label]}


def test_parent_of_cifar10_folder_is_accepted(class_tree):
    assert len(load_cifar10(class_tree.parent, download=False).train) == 200


def test_torchvision_layout(tmp_path, monkeypatch):
    from torchvision.datasets import cifar

    # torchvision checks the real files' md5 sums; the synthetic copy has its own.
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    d = load_cifar10(write_torchvision_copy(tmp_path, 60, 20), download=False)
    x, y = synthetic_images(80)
    assert np.array_equal(d.train.x, x[:60]) and np.array_equal(d.test.y, y[60:])
    assert d.classes == CIFAR10_CLASSES


def test_subset_is_seeded(class_tree):
    d = load_cifar10(class_tree, download=False)
    a, b = d.train.subset(50, seed=1), d.train.subset(50, seed=1)
    assert len(a) == 50 and np.array_equal(a.x, b.x)


def _error(path) -> str:
    with pytest.raises(UserError) as e:
        load_cifar10(path, download=False)
    return str(e.value)


def test_missing_data_folder(tmp_path):
    assert "no CIFAR-10 in" in _error(tmp_path / "nope") and "--data-dir" in _error(tmp_path / "nope")


def test_wrong_classes(tmp_path):
    root = write_class_folders(tmp_path / "c", 20, 10)
    (root / "train" / "truck").rename(root / "train" / "lorry")
    msg = _error(root)
    assert "missing truck" in msg and "unexpected lorry" in msg


def test_corrupt_and_empty_image(tmp_path):
    root = write_class_folders(tmp_path / "c", 20, 10)
    bad = root / "train" / "cat" / "zz-empty.png"
    bad.write_bytes(b"")
    assert "zz-empty.png" in _error(root) and "corrupt" in _error(root)
    bad.write_bytes(b"not an image at all")
    assert "zz-empty.png" in _error(root)


@pytest.mark.parametrize("size,mode,said", [((64, 48), "RGB", "64x48 RGB"), ((32, 32), "L", "32x32 L")])
def test_image_not_32x32_rgb(tmp_path, size, mode, said):
    root = write_class_folders(tmp_path / "c", 20, 10)
    Image.new(mode, size).save(root / "test" / "dog" / "odd.png")
    msg = _error(root)
    assert msg.endswith(f"odd.png: image is {said}; CIFAR-10 images must be 32x32 RGB - convert or remove it")


def test_a_cache_that_cannot_be_written_only_costs_speed(class_tree, tmp_path):
    import helpers.data as data

    root = _copy_tree(class_tree, tmp_path)
    (root / data.CACHE_DIR / "train.npz.tmp").mkdir(parents=True)  # something in the way of the write
    lines = []
    loaded = load_cifar10(root, download=False, log=lines.append)
    assert len(loaded.train) == 200 and lines[0].startswith("note: cannot write a decoded-data cache in ")
    assert (root / data.CACHE_DIR / "train.npz.tmp").is_dir() and not (root / data.CACHE_DIR / "train.npz").exists()


def test_offline_download_gives_one_clear_line(tmp_path, monkeypatch):
    import urllib.error

    import helpers.data as data

    def offline(*a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(data, "_torchvision_split", offline)
    with pytest.raises(UserError) as e:
        load_cifar10(tmp_path / "dl", download=True)
    msg = str(e.value)
    assert "could not download" in msg and "--data-dir" in msg and "\n" not in msg
    assert msg.endswith("point --data-dir at a local copy (train/<class>/ and test/<class>/ folders, or a "
                        "cifar-10-batches-py folder)")


def _copy_tree(class_tree, tmp_path):
    """A private copy of the images, without any cache an earlier test left."""
    import shutil

    import helpers.data as data

    return Path(shutil.copytree(class_tree, tmp_path / "tree", ignore=shutil.ignore_patterns(data.CACHE_DIR)))


def test_cache_is_written_then_used(class_tree, tmp_path, monkeypatch):
    import helpers.data as data

    root = _copy_tree(class_tree, tmp_path)
    first = load_cifar10(root, download=False)
    assert (root / data.CACHE_DIR / "train.npz").is_file() and (root / data.CACHE_DIR / "test.npz").is_file()

    def no_decoding(path):
        raise AssertionError("decoded an image although the cache matches")
    monkeypatch.setattr(data, "_read_image", no_decoding)
    lines = []
    again = load_cifar10(root, download=False, log=lines.append)
    assert lines == []
    assert np.array_equal(first.train.x, again.train.x) and np.array_equal(first.test.y, again.test.y)


def test_stale_cache_is_rebuilt_with_a_note(class_tree, tmp_path):
    root = _copy_tree(class_tree, tmp_path)
    load_cifar10(root, download=False)
    x, _ = synthetic_images(1, seed=9)
    Image.fromarray(x[0]).save(root / "train" / "cat" / "new.png")  # the folder changes
    lines = []
    data = load_cifar10(root, download=False, log=lines.append)
    assert len(data.train) == 201 and any(np.array_equal(img, x[0]) for img in data.train.x)
    assert len(lines) == 1 and "stale" in lines[0]


@pytest.mark.parametrize("damage", ["flip_a_byte", "truncate"])
def test_corrupt_cache_is_never_used(class_tree, tmp_path, damage):
    import helpers.data as data

    root = _copy_tree(class_tree, tmp_path)
    truth = load_cifar10(root, download=False).train
    cache = root / data.CACHE_DIR / "train.npz"
    raw = bytearray(cache.read_bytes())
    if damage == "flip_a_byte":  # inside the image array, where only the checksum can tell
        with np.load(cache) as z:
            start = raw.find(z["x"].tobytes()[:64])
        raw[start + 1000] ^= 0xFF
    else:
        raw = raw[: len(raw) // 2]
    cache.write_bytes(bytes(raw))
    lines = []
    got = load_cifar10(root, download=False, log=lines.append).train
    assert np.array_equal(got.x, truth.x) and np.array_equal(got.y, truth.y)
    assert len(lines) == 1 and ("corrupt" in lines[0] or "unreadable" in lines[0])
    lines.clear()
    load_cifar10(root, download=False, log=lines.append)  # rebuilt: quiet again
    assert lines == []


def test_read_only_folder_loads_without_cache(class_tree, tmp_path, monkeypatch):
    import helpers.data as data

    root = _copy_tree(class_tree, tmp_path)
    real_mkdir = Path.mkdir

    def read_only(self, *a, **k):
        if self.name == data.CACHE_DIR:
            raise PermissionError(13, "Permission denied")
        return real_mkdir(self, *a, **k)
    monkeypatch.setattr(Path, "mkdir", read_only)
    lines = []
    loaded = load_cifar10(root, download=False, log=lines.append)
    assert len(loaded.train) == 200 and len(loaded.test) == 100
    assert len(lines) == 2 and all("cannot write" in s and "Permission denied" in s for s in lines)
    assert not (root / data.CACHE_DIR).exists()


@pytest.mark.parametrize("change", ["pixels", "shape", "dtype", "labels"])
def test_a_readable_cache_that_does_not_hold_cifar_images_is_rebuilt(class_tree, tmp_path, change):
    """A cache that unzips cleanly but whose checksum, image shape, dtype or label count is wrong
    (another writer, another version) is not used."""
    import json

    import helpers.data as data

    root = _copy_tree(class_tree, tmp_path)
    truth = load_cifar10(root, download=False).train
    cache = root / data.CACHE_DIR / "train.npz"
    with np.load(cache) as z:
        x, y, meta = z["x"].copy(), z["y"].copy(), json.loads(bytes(z["meta"]).decode())
    if change == "pixels":  # the checksum says so
        x[0, 0, 0, 0] ^= 0xFF
    else:  # a checksum that matches what is there: only the shape, dtype or length can tell
        x = {"shape": x[:, :, :16], "dtype": x.astype(np.int16), "labels": x}[change]
        y = y[:-1] if change == "labels" else y
        meta["crc"] = data._crc(x, y)
    np.savez(cache, x=x, y=y, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    lines = []
    got = load_cifar10(root, download=False, log=lines.append).train
    assert np.array_equal(got.x, truth.x) and np.array_equal(got.y, truth.y)
    assert len(lines) == 1 and "corrupt" in lines[0]


def test_a_class_folder_without_images_is_named(class_tree, tmp_path):
    root = _copy_tree(class_tree, tmp_path)
    for f in list((root / "test" / "frog").iterdir()):
        f.unlink()
    (root / "test" / "frog" / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match=r"test/frog: no images in this class folder$"):
        load_cifar10(root, download=False)


def _failing_download(monkeypatch, writes=lambda d: None):
    """torchvision's download, offline after it wrote what ``writes`` writes into the folder."""
    import urllib.error

    import helpers.data as data

    def download(data_dir, train, download):
        assert download is True
        writes(data_dir)
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(data, "_torchvision_split", download)


def _partial_download(d: Path) -> None:
    (d / "cifar-10-python.tar.gz").write_bytes(b"half")
    (d / "cifar-10-batches-py").mkdir()
    (d / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"half")


def test_a_failed_download_into_a_new_folder_leaves_no_folder_behind(tmp_path, monkeypatch):
    _failing_download(monkeypatch, _partial_download)
    with pytest.raises(UserError, match="could not download CIFAR-10 into .*URLError"):
        load_cifar10(tmp_path / "a" / "b" / "dl", download=True)
    assert list(tmp_path.iterdir()) == []  # every folder it made, not only the last


def test_a_failed_download_into_a_users_folder_removes_only_what_it_wrote(tmp_path, monkeypatch):
    import os

    d = tmp_path / "mine"
    (d / "notes").mkdir(parents=True)
    (d / "keep.txt").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "inner").mkdir(parents=True)

    def writes(d):
        _partial_download(d)
        (d / "link").symlink_to(elsewhere, target_is_directory=True)  # removed, never followed
        (d / "in-use").write_bytes(b"")
    real_unlink = os.unlink

    def unlink(path, *a, **k):  # a file another program holds open cannot be deleted (Windows)
        if str(path).endswith("in-use"):
            raise PermissionError(13, "in use", str(path))
        real_unlink(path, *a, **k)
    monkeypatch.setattr(os, "unlink", unlink)
    _failing_download(monkeypatch, writes)
    with pytest.raises(UserError, match="could not download"):
        load_cifar10(d, download=True)
    assert sorted(p.name for p in d.iterdir()) == ["in-use", "keep.txt", "notes"]  # in-use: left, silently
    assert (elsewhere / "inner").is_dir()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_download_into_a_file_is_one_line_and_the_file_is_kept(tmp_path, monkeypatch, where):
    f = tmp_path / "data.txt"
    f.write_text("mine")
    _failing_download(monkeypatch)
    with pytest.raises(UserError, match="could not download CIFAR-10 into"):
        load_cifar10(f if where == "a file" else f / "dl", download=True)
    assert f.read_text() == "mine"


def test_the_downloads_cause_is_its_type_and_a_bounded_message():
    from helpers.data import _cause

    assert _cause(OSError()) == "OSError"
    assert _cause(OSError("disk\n  full")) == "OSError: disk full"
    assert _cause(ValueError("x" * 300)) == "ValueError: " + "x" * 200


def test_a_local_torchvision_copy_is_read_as_uint8_and_int64_and_never_downloaded(tmp_path, monkeypatch):
    import pickle

    from torchvision.datasets import cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(cifar.CIFAR10, "download", lambda self: pytest.fail("a local copy was downloaded again"))
    root = write_torchvision_copy(tmp_path, 60, 20)
    for f in (root / "cifar-10-batches-py").glob("*_batch*"):  # a copy written with wider integers
        batch = pickle.loads(f.read_bytes())
        f.write_bytes(pickle.dumps({"data": batch["data"].astype(np.int32),
                                    "labels": np.asarray(batch["labels"], dtype=np.int32)}))
    d = load_cifar10(root, download=True)
    assert d.train.x.dtype == np.uint8 and d.train.y.dtype == np.int64 and d.test.y.dtype == np.int64
    assert len(d.train) == 60 and len(d.test) == 20
    assert d.source == f"torchvision copy in {root}"


def test_a_download_is_torchvisions_into_the_folder_asked_for(tmp_path, monkeypatch):
    from torchvision.datasets import cifar

    def download(self):  # what torchvision's download leaves: its batches folder, once for both splits
        if not (Path(self.root) / "cifar-10-batches-py").is_dir():
            write_torchvision_copy(Path(self.root), 60, 20)
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(cifar.CIFAR10, "download", download)
    d = load_cifar10(tmp_path / "a" / "dl", download=True)
    x, y = synthetic_images(80)
    assert np.array_equal(d.train.x, x[:60]) and np.array_equal(d.test.y, y[60:])
    assert d.source == f"torchvision download into {tmp_path / 'a' / 'dl'}"


def test_a_subset_is_seeded_with_0_unless_asked_keeps_each_image_with_its_label_and_n_at_the_ends():
    s = numbered_split(100)
    a = s.subset(10)
    assert np.array_equal(a.y, s.subset(10, seed=0).y) and not np.array_equal(a.y, s.subset(10, seed=1).y)
    assert np.array_equal(a.x[:, 0, 0, 0], a.y) and list(a.y) == sorted(a.y)  # matched, in the split's order
    assert len(s.subset(1)) == 1  # one image is a subset too
    assert s.subset(100) is s and s.subset(500) is s and s.subset(0) is s  # all of it: no copy


def test_a_run_takes_its_subsets_with_its_seed_from_the_copy_handed_over(tmp_path):
    from helpers.config import TrainConfig
    from helpers.data import Cifar10, load_data

    full = Cifar10(numbered_split(100), numbered_split(50), ("a",) * 10, "a copy in memory")
    cfg = TrainConfig(data_dir=str(tmp_path / "nothing here"), limit_train=20, limit_test=10, seed=3)
    d = load_data(cfg, loaded=full)  # no folder read: the copy handed over is used
    assert np.array_equal(d.train.y, full.train.subset(20, 3).y)
    assert np.array_equal(d.test.y, full.test.subset(10, 3).y)
    assert (d.classes, d.source) == (full.classes, full.source)


def test_no_copy_in_the_folder_is_downloaded_unless_asked_not_to(tmp_path, monkeypatch):
    import helpers.data as data

    asked = []
    monkeypatch.setattr(data, "_torchvision_split",
                        lambda d, train, download: asked.append((d, train, download)) or numbered_split(4))
    load_cifar10(tmp_path / "dl")
    assert asked == [(tmp_path / "dl", True, True), (tmp_path / "dl", False, True)]  # both splits, into the folder


def test_a_cache_file_never_runs_code_it_holds(tmp_path):
    import json

    from helpers.data import read_cache

    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (ran,))

    meta = np.frombuffer(json.dumps({"key": "k"}).encode(), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", x=np.array([Payload()], dtype=object), y=np.zeros(1, np.int64), meta=meta)
    lines = []
    assert read_cache(tmp_path / "c.npz", "k", lines.append) is None and not ran.exists()
    assert len(lines) == 1 and "unreadable" in lines[0]  # numpy pickled the object array; reading it is refused


@pytest.mark.parametrize("gone,extra,words", [
    (("truck",), (), "(missing truck)"), (("ship", "truck"), (), "(missing ship, truck)"),
    ((), ("lorry", "van"), "(unexpected lorry, van)")])
def test_class_folders_name_every_missing_or_unexpected_class(tmp_path, gone, extra, words):
    import shutil

    root = write_class_folders(tmp_path / "c", 20, 10)
    for name in gone:
        shutil.rmtree(root / "train" / name)
    for name in extra:
        (root / "train" / name).mkdir()
    assert words in _error(root)


def test_a_test_folder_without_a_train_folder_names_the_train_folder(tmp_path):
    import shutil

    root = write_class_folders(tmp_path / "c", 20, 10)
    shutil.rmtree(root / "train")
    assert "has test/ but no train/" in _error(root) and f"add {root / 'train'} " in _error(root)
