"""helpers.checkpoint: atomic writes, RNG states, and the run folder's lock."""
from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import Watch, fail_in_epoch, observe_runs, write_class_folders, write_lock
from helpers import checkpoint as ckpt
from helpers.cli import main
from helpers.config import TrainConfig
from helpers.errors import UserError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "history.json"
    ckpt.atomic_write_text("old", path)

    def fail(f):
        f.write(b"half a fi")
        raise OSError("disk full")

    with pytest.raises(ckpt.WriteFailed, match="disk full; history.json is left as it was"):
        ckpt._atomic_write(path, fail)
    assert path.read_text() == "old"
    ckpt.atomic_write_text("new", path)
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]


# the lease: a live writer's lock is always fresh; a gone machine's is taken over ------------------
def lease_threads(folder: Path) -> list[str]:
    """The lease threads renewing ``folder``'s lock (a notebook's run object elsewhere in the
    test process holds its own folder's until the process exits)."""
    return [t.name for t in threading.enumerate() if t.name == f"run-lock-lease {folder}"]


@pytest.mark.slow
@pytest.mark.e2e
def test_a_fresh_lock_of_another_machine_is_refused_saying_when_it_expires(tmp_path, monkeypatch, capsys):
    _, folder = stopped_in_epoch_3(tmp_path, monkeypatch)
    write_lock(folder, host="colab-old-vm", pid=123, time=time.time() - 4)
    capsys.readouterr()
    assert main(["train", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pid 123 on colab-old-vm, lock renewed 4 s ago" in err
    assert f"expires {int(ckpt.STALE_SECONDS) - 4} s from now" in err
    assert json.loads((folder / ckpt.LOCK).read_text())["host"] == "colab-old-vm"  # left as it was


def test_a_lock_not_renewed_for_the_stale_time_is_taken_over_with_one_line(tmp_path):
    folder = tmp_path / "run"
    assert ckpt.STALE_SECONDS <= 120  # a reconnect waits two minutes at most (README)
    write_lock(folder, host="colab-old-vm", pid=123, time=time.time() - ckpt.STALE_SECONDS - 5)
    said = []
    lock = ckpt.RunLock(folder, log=said.append)
    assert lock.acquire() is True
    try:
        assert len(said) == 1 and "held by pid 123 on colab-old-vm" in said[0]
        assert f"last renewed {int(ckpt.STALE_SECONDS) + 5} s ago" in said[0]
        assert json.loads((folder / ckpt.LOCK).read_text())["host"] == socket.gethostname()
    finally:
        lock.release()
    assert not (folder / ckpt.LOCK).exists() and not lease_threads(folder)


def test_a_lock_exactly_the_stale_age_is_stale(tmp_path, monkeypatch):
    """Another machine's lock lives for less than STALE_SECONDS: at exactly that age it is taken over."""
    folder = tmp_path / "run"
    now = 1_800_000_000.0
    monkeypatch.setattr(ckpt.time, "time", lambda: now)
    lock = ckpt.RunLock(folder)
    for age, alive in ((ckpt.STALE_SECONDS - 1e-3, True), (ckpt.STALE_SECONDS, False)):
        assert lock._alive({"host": "colab-old-vm", "pid": 123, "time": now - age}) is alive


@pytest.mark.slow
def test_the_holder_renews_its_lock_during_a_step_slower_than_the_lease(tmp_path):
    lock = ckpt.RunLock(tmp_path, lease=0.05)
    assert lock.acquire() is True
    first = lock.holder()["time"]
    time.sleep(0.4)  # one "step" of eight leases, no call into the lock
    renewed = lock.holder()["time"]
    lock.release()
    assert renewed - first > 0.2
    assert not lease_threads(tmp_path) and not (tmp_path / ckpt.LOCK).exists()


def test_a_renewal_that_cannot_write_is_tried_again_at_the_next_lease(tmp_path, monkeypatch):
    lock = ckpt.RunLock(tmp_path, lease=0.02)
    assert lock.acquire() is True
    failed = []
    real = ckpt.atomic_write_text

    def full_twice(text, path):
        if len(failed) < 2:
            failed.append(path)
            raise ckpt.WriteFailed("cannot write .lock: no space left on the device")
        real(text, path)

    monkeypatch.setattr(ckpt, "atomic_write_text", full_twice)
    first = lock.holder()["time"]
    time.sleep(0.3)
    renewed = lock.holder()["time"]
    lock.release()
    assert len(failed) == 2 and renewed > first  # the thread lived on and renewed once the disk had room


@pytest.mark.slow
def test_the_lease_thread_runs_while_training_and_ends_when_the_run_ends_or_fails(tmp_path, monkeypatch):
    tree = write_class_folders(tmp_path / "c" / "cifar10", 100, 40)
    seen = []
    observe_runs(monkeypatch, Watch(lambda epoch: seen.append(lease_threads(tmp_path / "ok")
                                                              + lease_threads(tmp_path / "fails"))))
    assert main(train_args(tree, tmp_path / "ok", epochs=2)) == 0
    assert len(seen) == 2 and all(len(names) == 1 for names in seen)
    assert not lease_threads(tmp_path / "ok")
    fail_in_epoch(monkeypatch, 1, RuntimeError("a bug"))
    with pytest.raises(RuntimeError):
        main(train_args(tree, tmp_path / "fails", epochs=2))
    assert len(seen) == 3 and len(seen[2]) == 1 and "fails" in seen[2][0]  # it leased while it ran
    assert not lease_threads(tmp_path / "fails") and not (tmp_path / "fails" / ckpt.LOCK).exists()


# the previous checkpoint: damage costs one line and at most one epoch -----------------------------
def train_args(tree: Path, out: Path, epochs: int = 3) -> list[str]:
    return ["train", "--data-dir", str(tree), "--out", str(out), "--epochs", str(epochs), "--max-at-epoch", "1",
            "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625", "--batch-size", "32", "--no-progress",
            "--device", "cpu", "--no-report", "--seed", "1"]


def stopped_in_epoch_3(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """Class folders and a run stopped in epoch 3: checkpoint.pt after epoch 2, the previous after 1."""
    tree = write_class_folders(tmp_path / "c" / "cifar10", 160, 40)
    folder = tmp_path / "run"
    with monkeypatch.context() as m:
        fail_in_epoch(m, 3, KeyboardInterrupt())
        assert main(train_args(tree, folder)) == 130
    assert torch.load(folder / ckpt.CHECKPOINT, weights_only=False)["epoch"] == 2
    assert torch.load(folder / ckpt.PREVIOUS, weights_only=False)["epoch"] == 1
    return tree, folder


def without_times(history: dict) -> dict:
    return {**history, "epochs": [{k: v for k, v in e.items() if "seconds" not in k} for e in history["epochs"]],
            "total_seconds": None, "wall_seconds": None}


@pytest.mark.slow
@pytest.mark.e2e
def test_a_cut_checkpoint_continues_from_the_previous_one_and_ends_as_an_unbroken_run(tmp_path, monkeypatch,
                                                                                       capsys):
    tree, folder = stopped_in_epoch_3(tmp_path, monkeypatch)
    newest = folder / ckpt.CHECKPOINT
    damaged = newest.read_bytes()[:1000]
    newest.write_bytes(damaged)  # a synced drive delivered the first 1,000 bytes
    watch = Watch()
    observe_runs(monkeypatch, watch)
    capsys.readouterr()
    assert main(["train", "--resume", str(folder), "--no-progress"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "damaged" in ln]
    assert len(lines) == 1 and str(newest) in lines[0] and "after epoch 1" in lines[0]
    assert watch.started == [2, 3]  # one epoch lost, not the run
    assert (folder / "checkpoint.pt.damaged").read_bytes() == damaged  # kept, not deleted
    full = tmp_path / "full"
    assert main(train_args(tree, full)) == 0
    a, b = (json.loads((f / "history.json").read_text()) for f in (folder, full))
    assert without_times(a) == without_times(b)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("damage", ["truncated", "not a checkpoint"])
def test_when_no_checkpoint_loads_one_line_says_so_and_nothing_changes(tmp_path, monkeypatch, capsys, damage):
    _, folder = stopped_in_epoch_3(tmp_path, monkeypatch)
    for name in (ckpt.CHECKPOINT, ckpt.PREVIOUS):
        path = folder / name
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[:1000])
        else:
            torch.save({"epoch": 2}, path)  # loads, but is not a checkpoint of a run
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ckpt.LOCK}
    capsys.readouterr()
    assert main(["train", "--resume", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: no checkpoint in {folder} can be read")
    assert "start a new run folder" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ckpt.LOCK} == before


@pytest.mark.slow
@pytest.mark.e2e
def test_the_notebooks_run_object_falls_back_to_the_previous_checkpoint(tmp_path, monkeypatch):
    from helpers.run import Run

    tree, folder = stopped_in_epoch_3(tmp_path, monkeypatch)
    (folder / ckpt.CHECKPOINT).write_bytes(b"PK\x03\x04 cut")
    said = []
    cfg = TrainConfig(data_dir=str(tree), out=str(folder), epochs=3, max_at_epoch=1, lr_min=0.05, lr_max=0.4,
                      width=0.0625, batch_size=32, device="cpu", seed=1, progress=False, report=False)
    run = Run.open(cfg, log=said.append)
    assert run.resuming and any("after epoch 1" in s for s in said)
    assert [e["epoch"] for e in run.fit()["epochs"]] == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.e2e
def test_the_previous_checkpoint_alone_still_counts_and_loads_where_asked(tmp_path, monkeypatch, capsys):
    """A kill between the two renames of a save leaves only checkpoint-prev.pt: the folder still
    holds a run, and it loads (onto the device asked for) with its one line."""
    _, folder = stopped_in_epoch_3(tmp_path, monkeypatch)
    (folder / ckpt.CHECKPOINT).unlink()
    assert ckpt.has_checkpoint(folder)
    said = []
    state = ckpt.load_latest(folder, log=said.append, map_location="meta")
    assert state["epoch"] == 1 and len(said) == 1 and "after epoch 1" in said[0]
    assert all(t.device.type == "meta" for t in state["model"].values())
    assert ckpt.load_latest(folder, map_location="meta")["epoch"] == 1  # now the newest: no line
    assert next(iter(ckpt.load_latest(folder, log=said.append)["model"].values())).device.type == "cpu"
    assert len(said) == 1 and not ckpt.has_checkpoint(tmp_path / "empty")


@pytest.mark.slow
@pytest.mark.e2e
def test_saved_epoch_reads_the_newest_loadable_silently(tmp_path, monkeypatch, capsys):
    _, folder = stopped_in_epoch_3(tmp_path, monkeypatch)
    assert ckpt.saved_epoch(folder) == 2
    (folder / ckpt.CHECKPOINT).write_bytes(b"cut")
    capsys.readouterr()
    assert ckpt.saved_epoch(folder) == 1 and capsys.readouterr() == ("", "")
    assert ckpt.saved_epoch(tmp_path / "nothing-here") == 0


@pytest.mark.slow
def test_a_lock_with_a_garbled_time_is_stale_and_a_live_local_holder_is_left_alone(tmp_path, monkeypatch):
    import subprocess
    import sys

    folder = tmp_path / "run"
    write_lock(folder, host="colab-old-vm", pid=1, time="yesterday")
    lock = ckpt.RunLock(folder, log=lambda _: None)
    assert lock.acquire() is True
    lock.release()
    # SIGHUP as the default would have it (a parent under nohup ignores it): any signal ends the holder
    holder = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGHUP, "
                               "signal.SIG_DFL); print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        write_lock(folder, host=socket.gethostname(), pid=holder.pid, time=time.time() - 3600)
        with pytest.raises(ckpt.UserError, match=f"pid {holder.pid}"):
            ckpt.RunLock(folder).acquire()
        with pytest.raises(subprocess.TimeoutExpired):  # only asked whether it lives (signal 0), never signalled
            holder.wait(0.5)
    finally:
        holder.kill()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_lock(folder, host=socket.gethostname(), pid=gone.pid, time=time.time())  # fresh, but its process ended
    said = []
    lock = ckpt.RunLock(folder, log=said.append)
    assert lock.acquire() is True and said == []  # this machine's own dead writer: taken silently
    lock.release()
    write_lock(folder, host=socket.gethostname(), pid=424242, time=time.time())

    def not_ours(pid, sig):
        raise PermissionError  # a live process of another user
    monkeypatch.setattr(ckpt.os, "kill", not_ours)
    with pytest.raises(ckpt.UserError, match="pid 424242"):
        ckpt.RunLock(folder).acquire()


def _state(epoch: int) -> dict:
    return {**{k: {} for k in ckpt.STATE_KEYS}, "model": {"w": torch.full((2,), float(epoch))}, "epoch": epoch}


def test_the_newest_checkpoint_loads_where_asked_and_a_damaged_one_falls_back_to_the_one_before(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    newest, previous = folder / ckpt.CHECKPOINT, folder / ckpt.PREVIOUS
    assert not ckpt.has_checkpoint(folder) and ckpt.load_latest(folder) is None and ckpt.saved_epoch(folder) == 0
    ckpt.save_checkpoint(_state(1), folder)
    ckpt.save_checkpoint(_state(2), folder)
    said = []
    assert ckpt.load_latest(folder, log=said.append)["epoch"] == 2 and ckpt.saved_epoch(folder) == 2 and not said
    assert ckpt.load_latest(folder, map_location="meta")["model"]["w"].device.type == "meta"
    assert ckpt.load(newest)["model"]["w"].device.type == "cpu"
    newest.write_bytes(b"cut")
    assert ckpt.saved_epoch(folder) == 1 and capsys.readouterr() == ("", "")  # silently
    assert newest.is_file() and not previous.exists()
    assert (folder / "checkpoint.pt.damaged").read_bytes() == b"cut"  # kept, never deleted
    assert ckpt.load_latest(folder, log=said.append)["epoch"] == 1 and not said  # now the newest

    ckpt.save_checkpoint(_state(2), folder)
    newest.write_bytes(b"cut again")
    state = ckpt.load_latest(folder, log=said.append, map_location="meta")
    assert state["epoch"] == 1 and state["model"]["w"].device.type == "meta"
    assert len(said) == 1 and said[0].startswith(f"{newest} is damaged (")  # then torch's reason, in its words
    assert said[0].endswith("): continuing from the checkpoint before it, after epoch 1 (the damaged file is kept "
                            "as checkpoint.pt.damaged)")


def test_the_previous_checkpoint_alone_is_a_run_to_continue(tmp_path):
    ckpt.save_checkpoint(_state(1), tmp_path)
    ckpt.save_checkpoint(_state(2), tmp_path)
    (tmp_path / ckpt.CHECKPOINT).unlink()  # killed between the two renames of a save
    assert ckpt.has_checkpoint(tmp_path)
    said = []
    assert ckpt.load_latest(tmp_path, log=said.append)["epoch"] == 1
    assert said[0].startswith(f"{tmp_path / ckpt.CHECKPOINT} is missing: continuing") and len(said) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.CHECKPOINT]


def test_when_neither_checkpoint_loads_one_line_names_both_and_nothing_moves(tmp_path):
    torch.save([1, 2], tmp_path / ckpt.CHECKPOINT)
    torch.save({"epoch": 3, "model": {}}, tmp_path / ckpt.PREVIOUS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ckpt.DamagedFile) as e:
        ckpt.load_latest(tmp_path)
    lacks = "not a checkpoint of this package (it lacks "
    assert str(e.value) == (f"no checkpoint in {tmp_path} can be read ({tmp_path / ckpt.CHECKPOINT} is damaged: {lacks}"
                            "model, optimizer, scheduler, scaler, rng, history, epoch, config); "
                            f"{tmp_path / ckpt.PREVIOUS} is damaged: {lacks}optimizer, scheduler, scaler, rng, "
                            "history, config)); start a new run folder (another --out, or another OUT in the notebook)")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("error,shown", [(RuntimeError("first line\nsecond line"), "first line"),
                                         (EOFError(), "EOFError"), (ValueError("  "), "ValueError")])
def test_a_file_torch_cannot_read_is_one_line_with_the_first_line_of_the_reason(tmp_path, monkeypatch, error, shown):
    path = tmp_path / "x.pt"
    path.write_bytes(b"x")

    def fail(*a, **k):
        raise error
    monkeypatch.setattr(ckpt.torch, "load", fail)
    with pytest.raises(ckpt.DamagedFile) as e:
        ckpt.load(path)
    assert str(e.value) == f"{path} is damaged ({shown})"


def test_renewing_touches_only_a_lock_of_this_process(tmp_path):
    write_lock(tmp_path, host="colab-old-vm", pid=123, time=1000.0)
    before = (tmp_path / ckpt.LOCK).read_text()
    ckpt.RunLock(tmp_path).touch()
    assert (tmp_path / ckpt.LOCK).read_text() == before


def test_a_live_lock_is_refused_saying_whose_it_is_and_how_long_to_wait(tmp_path):
    folder = tmp_path / "deep" / "run"
    write_lock(folder, host="colab-old-vm", pid=123, time=time.time() - 4)
    with pytest.raises(ckpt.UserError) as e:
        ckpt.RunLock(folder).acquire()
    assert str(e.value) == (f"another process writes to {folder} (pid 123 on colab-old-vm, lock renewed 4 s ago); "
                            f"if that runtime is gone, its lock expires {int(ckpt.STALE_SECONDS) - 4} s from now: "
                            "try again then, or choose another output folder")
    write_lock(folder, host=socket.gethostname(), pid=1, time=time.time())  # pid 1 lives: this machine's init
    with pytest.raises(ckpt.UserError, match=r"\(pid 1 on .*, lock renewed 0 s ago\); wait for it to finish, or"):
        ckpt.RunLock(folder).acquire()


def test_a_lock_is_taken_in_a_new_folder_renewed_by_a_daemon_thread_and_taken_once(tmp_path):
    folder = tmp_path / "new" / "run"
    lock = ckpt.RunLock(folder)
    assert lock.acquire() is True and (folder / ckpt.LOCK).is_file()
    try:
        assert [t.daemon for t in threading.enumerate() if t.name == f"run-lock-lease {folder}"] == [True]
        assert ckpt.RunLock(folder).acquire() is False  # this process holds it already: not taken twice
    finally:
        lock.release()
    assert not (folder / ckpt.LOCK).exists()


def test_releasing_leaves_another_writers_lock_and_may_be_repeated(tmp_path):
    ckpt.RunLock(tmp_path).release()  # never taken: nothing to do
    write_lock(tmp_path, host="colab-old-vm", pid=123, time=time.time())
    ckpt.RunLock(tmp_path).release()
    assert json.loads((tmp_path / ckpt.LOCK).read_text())["host"] == "colab-old-vm"
    (tmp_path / ckpt.LOCK).unlink()
    lock = ckpt.RunLock(tmp_path)
    lock.acquire()
    lock.release()
    lock.release()
    assert not (tmp_path / ckpt.LOCK).exists()


def test_a_lock_file_that_is_not_a_json_object_holds_nothing(tmp_path):
    (tmp_path / ckpt.LOCK).write_text("[1, 2]")
    lock = ckpt.RunLock(tmp_path, log=lambda _: None)
    assert lock.holder() is None and lock.acquire() is True
    lock.release()


# a write that fails: one line, nothing lost ------------------------------------------------------
@pytest.mark.parametrize("error,free,reason", [
    (OSError(errno.ENOSPC, "No space left on device"), 10**12, "no space left on device"),
    (PermissionError(errno.EACCES, "Permission denied"), 10**12, "permission denied"),
    (OSError(errno.EROFS, "Read-only file system"), 10**12, "read-only file system"),
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos"), 2**20,
     "no space left on the device (1.0 MiB free)"),  # how torch.save reports a full disk
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos"), 10**12,
     "[enforce fail at inline_container.cc:672] . unexpected pos")])
def test_a_failed_write_is_one_line_and_leaves_the_file_it_replaces(tmp_path, monkeypatch, error, free, reason):
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: SimpleNamespace(free=free))
    ckpt.save_checkpoint({"epoch": 1}, tmp_path)

    def fail(f):
        f.write(b"half a file")
        raise error

    with pytest.raises(ckpt.WriteFailed) as e:
        ckpt._atomic_write(tmp_path / ckpt.CHECKPOINT, fail, previous=tmp_path / ckpt.PREVIOUS)
    assert str(e.value) == f"cannot write checkpoint.pt in {tmp_path}: {reason}; checkpoint.pt is left as it was"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no .tmp, no rename
    assert torch.load(tmp_path / ckpt.CHECKPOINT, weights_only=False) == {"epoch": 1}
    with pytest.raises(ckpt.WriteFailed, match="no new.json was there before"):
        ckpt._atomic_write(tmp_path / "new.json", fail)


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_naming_the_last_good_checkpoint(class_tree, tmp_path, monkeypatch,
                                                                                 capsys):
    saves = []
    real = ckpt.torch.save

    def full_from_the_second(obj, f, *a, **k):
        saves.append(1)
        if len(saves) == 2:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", full_from_the_second)
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda p: SimpleNamespace(free=512 * 1024))
    run = tmp_path / "r"
    assert main(["train", "--data-dir", str(class_tree), "--out", str(run), "--epochs", "3", "--max-at-epoch", "1",
                 "--lr-min", "0.05", "--lr-max", "0.4", "--width", "0.0625", "--batch-size", "32",
                 "--no-progress", "--no-report", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err == (f"error: cannot write checkpoint.pt in {run}: no space left on the device (0.5 MiB free); "
                   "checkpoint.pt is left as it was; epoch 2 is not saved, the last good checkpoint is epoch 1: "
                   f"once the folder can be written, continue with --resume {run}\n")
    assert not list(run.glob("*.tmp")) and torch.load(run / ckpt.CHECKPOINT, weights_only=False)["epoch"] == 1
    monkeypatch.setattr(ckpt.torch, "save", real)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0


def test_any_other_failed_write_of_a_command_is_one_line(monkeypatch, capsys):
    from helpers import cli

    def read_only(args):
        raise OSError(errno.EROFS, "Read-only file system", "/content/drive/MyDrive/runs/x/curves.png")

    monkeypatch.setattr(cli, "run", read_only)
    assert cli.main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write /content/drive/MyDrive/runs/x/curves.png: Read-only file system" in err
    monkeypatch.setattr(cli, "run", lambda args: (_ for _ in ()).throw(OSError(errno.ENOENT, "No such file")))
    with pytest.raises(OSError):  # not a write failure: not ours to word
        cli.main(["train"])


@pytest.mark.slow
def test_a_second_writer_is_refused_in_one_line_and_a_dead_ones_lock_taken_over(tmp_path, monkeypatch, capsys):
    host = socket.gethostname()
    _, folder = stopped_in_epoch_3(tmp_path, monkeypatch)
    assert not (folder / ckpt.LOCK).exists()  # released when the run stopped
    capsys.readouterr()
    write_lock(folder, host=host, pid=os.getppid(), time=time.time())  # a live process on this machine
    assert main(["train", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: another process writes to {folder} (pid {os.getppid()}") and err.count("\n") == 1
    write_lock(folder, host="other-colab-vm", pid=1, time=time.time() - 60)  # another machine, a minute ago
    with pytest.raises(UserError, match="on other-colab-vm"):
        ckpt.RunLock(folder).acquire()
    write_lock(folder, host="other-colab-vm", pid=1, time=time.time() - ckpt.STALE_SECONDS - 1)  # left behind
    assert ckpt.RunLock(folder).acquire() is True
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lock(folder, host=host, pid=dead.pid, time=time.time())
    lock = ckpt.RunLock(folder)
    assert lock.acquire() is True and lock.acquire() is False  # taken over; then ours already
    lock.release()
    assert not (folder / ckpt.LOCK).exists()


def test_why_a_write_failed_names_the_os_reason_low_space_or_the_error(tmp_path, monkeypatch):
    import shutil

    assert ckpt._why(OSError(errno.EACCES, "Permission denied"), tmp_path) == "permission denied"
    free = {"bytes": ckpt.LOW_SPACE_BYTES - 1}
    monkeypatch.setattr(shutil, "disk_usage", lambda p: SimpleNamespace(free=free["bytes"]))
    low = "no space left on the device (64.0 MiB free)"
    assert ckpt._why(RuntimeError("PytorchStreamWriter failed"), tmp_path) == low
    free["bytes"] = ckpt.LOW_SPACE_BYTES  # exactly the limit is enough
    assert ckpt._why(RuntimeError("PytorchStreamWriter failed\nwriting file"), tmp_path) == "PytorchStreamWriter failed"
    assert ckpt._why(RuntimeError("  "), tmp_path) == "RuntimeError"

    def gone(p):
        raise FileNotFoundError(p)
    monkeypatch.setattr(shutil, "disk_usage", gone)  # the folder itself vanished: the error still speaks
    assert ckpt._why(RuntimeError("file write failed"), tmp_path) == "file write failed"


def test_a_new_folder_names_the_option_that_chose_it(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"not empty; choose another --out$"):
        ckpt.new_folder(tmp_path / "full")
    with pytest.raises(UserError, match=r"is a file, not a folder; choose another --out$"):
        ckpt.new_folder(tmp_path / "file")
    with pytest.raises(UserError, match=r"is a file, not a folder; choose another --compare-dir$"):
        ckpt.new_folder(tmp_path / "file", "--compare-dir")
    assert ckpt.new_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()


def test_a_writable_folder_is_made_checked_without_a_trace_and_a_file_in_its_place_named(tmp_path, monkeypatch):
    folder = ckpt.writable_folder(tmp_path / "a" / "b")
    assert folder == tmp_path / "a" / "b" and list(folder.iterdir()) == []  # the probe leaves nothing
    (folder / ".write-test").write_text("mine")  # any file of the user's is left as it is
    ckpt.writable_folder(folder)
    assert (folder / ".write-test").read_text() == "mine" and len(list(folder.iterdir())) == 1
    with pytest.raises(ckpt.UserError, match=r"is a file, not a folder; choose another --out$"):
        ckpt.writable_folder(folder / ".write-test")

    real, probed = ckpt.tempfile.TemporaryFile, []
    monkeypatch.setattr(ckpt.tempfile, "TemporaryFile", lambda **k: probed.append(k["dir"]) or real(**k))
    ckpt.writable_folder(folder)
    assert probed == [folder]  # the folder itself is probed, not the system's temporary folder

    def refused(**k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(ckpt.tempfile, "TemporaryFile", refused)
    with pytest.raises(ckpt.UserError, match=r"cannot write to .* \(Permission denied\); choose a writable --out$"):
        ckpt.writable_folder(folder)
