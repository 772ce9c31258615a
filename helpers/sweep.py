"""Run these jobs: a list of independent runs (one (arm, seed) each), one after another in this
process, or as Ray tasks on every GPU (or CPU) of this machine or of a Ray cluster.

    results = run_jobs(jobs)                                   # here, one at a time
    results = run_jobs(jobs, RaySettings())                    # every GPU (or CPU) of this machine
    results = run_jobs(jobs, RaySettings(address="HOST:6379")) # a cluster: 'ray start --head' first

``helpers compare``, ``benchmarks/full_size.py`` and ``benchmarks/ladder.py`` all go through
:func:`run_jobs`, so there is one loop for both paths. A job whose result is already on disk
(``Job.done``) is not run again, with or without Ray, and a training job whose folder holds a
checkpoint continues from it: an interrupted sweep picks up where it stopped.

Every job writes its own run folder, and callers build their summaries from those folders, so
the data folder and the output folder must be readable at the same path on every node (shared
storage or a copy); a worker that cannot find one stops its job with one line naming the node.

Why Ray, not ``torch.multiprocessing``: the same call spans one machine or many, schedules one
GPU per task (``CUDA_VISIBLE_DEVICES`` set for each), and ships this repository to the workers
(``runtime_env`` ``working_dir``). Ray is optional (``requirements-sweep.txt``); nothing imports it
unless asked.

CPU determinism: a CPU run repeats bit for bit for the same seed *and the same number of torch
threads* (oneDNN splits its reductions by thread; a 1-thread and a 2-thread run of one seed differ
in the last digits, then in the accuracy). A Ray task gets ``cpus_per_job`` threads; give the
sequential path the same ``cpus_per_job`` to get the same numbers. Every run records its
``cpu_threads`` in ``config.json``.
"""
from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .config import TrainConfig
from .data import Cifar10, load_cifar10, load_data
from .errors import Log, UserError
from .files import DamagedFile, read_json
from .lr_finder import RangeTestResult, find_lrs
from .run import Run

ROOT = Path(__file__).resolve().parents[1]
# Not shipped to Ray workers: history, run folders, data and the GPU bundle (the code is ~3 MB).
RUNTIME_ENV = {"working_dir": str(ROOT),
               "excludes": [".git", "runs", "data", ".bundle", "results", "assets", "*.ipynb", "__pycache__"]}
INSTALL_HINT = "install it with: pip install -r requirements-sweep.txt"


@dataclass(frozen=True)
class Job:
    """One run. ``fn(**kwargs, log=...)`` does it; ``fn`` must be a module-level function (Ray sends
    it to workers by reference). ``done()`` (here, not on a worker) returns the finished result read
    from disk, or None. ``needs``: paths the job reads (the data folder), checked on the worker."""
    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    done: Callable[[], Any] = field(default=lambda: None, compare=False)
    needs: tuple[str, ...] = ()
    device: str = "auto"


@dataclass(frozen=True)
class RaySettings:
    """``address``: None starts Ray on this machine (every GPU, else every CPU); 'auto' or
    HOST:PORT joins a running cluster."""
    address: str | None = None


def add_arguments(parser) -> None:
    """``--ray``, ``--ray-address`` and ``--cpus-per-job`` on a command that runs many jobs."""
    parser.add_argument("--ray", action="store_true",
                        help="run the (arm, seed) jobs as Ray tasks on every GPU (or CPU) of this machine")
    parser.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="run them on a running Ray cluster instead ('ray start --head' prints the address; "
                             "'auto' reads RAY_ADDRESS); implies --ray. The data and output folders must be at the "
                             "same path on every node")
    parser.add_argument("--cpus-per-job", type=int, default=None, metavar="N",
                        help="CPUs (and torch threads) per job; default: on Ray 1 on CPUs or each GPU's share of "
                             "the CPUs, here torch's own choice. CPU numbers repeat for one seed and one N")


def settings_from(args) -> tuple[RaySettings | None, int | None]:
    """(Ray settings or None, cpus_per_job) from :func:`add_arguments`' options."""
    if args.cpus_per_job is not None and args.cpus_per_job < 1:
        raise UserError(f"--cpus-per-job must be at least 1, got {args.cpus_per_job}")
    if not (args.ray or args.ray_address):
        return None, args.cpus_per_job
    import_ray()  # missing Ray or a bad address: one line before anything runs
    if args.ray_address:
        check_address(args.ray_address)
    return RaySettings(args.ray_address), args.cpus_per_job


def run_jobs(jobs: list[Job], ray: RaySettings | None = None, cpus_per_job: int | None = None,
             log: Log = print) -> list[Any]:
    """Each job's result, in order. Finished jobs are read back, the others run: here one after
    another (stopping at the first error), or as Ray tasks (every task finishes; the errors are
    then reported in one line). ``cpus_per_job``: CPUs and torch threads a job gets; None: here
    torch's own choice, on Ray 1 on CPUs or each GPU's share of the CPUs."""
    results = [job.done() for job in jobs]
    todo = [i for i, r in enumerate(results) if r is None]
    if len(todo) < len(jobs):
        log(f"{len(jobs) - len(todo)} of {len(jobs)} jobs already finished; reading them back")
    if ray is None:
        for i in todo:
            results[i] = _call(jobs[i].fn, jobs[i].kwargs, jobs[i].needs, cpus_per_job, log)
            log(f"done {jobs[i].name}")
    elif todo:
        for i, r in zip(todo, _run_on_ray([jobs[i] for i in todo], ray, cpus_per_job, log)):
            results[i] = r
    return results


def _call(fn: Callable[..., Any], kwargs: dict[str, Any], needs: tuple[str, ...], threads: int | None,
          log: Log = print) -> Any:
    """One job, on whichever machine runs it."""
    for path in needs:
        if not Path(path).exists():
            raise UserError(f"{path} is not readable on node {socket.gethostname()}: every node needs the data "
                            "and output folders at the same path (shared storage or a copy)")
    with _torch_threads(threads):
        return fn(**kwargs, log=log)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _task(fn: Callable[..., Any], kwargs: dict[str, Any], needs: tuple[str, ...], threads: int) -> Any:
    """A Ray task: the job, with a user's error sent back as its one line, not a remote traceback."""
    try:
        return _call(fn, kwargs, needs, threads, print)
    except UserError as e:
        return _Failed(str(e))


@dataclass(frozen=True)
class _Failed:
    message: str


def import_ray():
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def check_address(address: str, timeout: float = 3.0) -> None:
    """A HOST:PORT that answers, or one line; 'auto' is left to Ray (it reads RAY_ADDRESS)."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--ray-address expects HOST:PORT (as 'ray start --head' prints) or 'auto', got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one with "
                        "'ray start --head' there, or leave --ray-address out to use this machine") from None


def connect(settings: RaySettings):
    """Start (address None) or join Ray, shipping this repository to the workers; a process that
    is already connected stays so (a command's second batch of jobs reuses its workers; Ray
    disconnects when the process exits)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if settings.address:
        check_address(settings.address)
    try:
        ray.init(address=settings.address, include_dashboard=False, runtime_env=RUNTIME_ENV, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"could not start or join Ray at {settings.address or 'this machine'}: {e}") from None
    return ray


def _run_on_ray(jobs: list[Job], settings: RaySettings, cpus_per_job: int | None, log: Log) -> list[Any]:
    ray = connect(settings)
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    per_job = cpus_per_job or (max(1, cpus // gpus) if gpus else 1)
    remote = ray.remote(_task)
    pending = {}
    for i, job in enumerate(jobs):
        if job.device.startswith("cuda") and not gpus:
            raise UserError(f"{job.name} asks for --device {job.device}, but the Ray cluster has no GPU")
        want_gpu = 1 if gpus and job.device in ("auto", "cuda") else 0
        ref = remote.options(num_cpus=per_job, num_gpus=want_gpu, name=job.name).remote(
            job.fn, job.kwargs, job.needs, per_job)
        pending[ref] = i
    log(f"Ray: {len(jobs)} jobs on {gpus} GPUs / {cpus} CPUs, {per_job} CPUs a job")
    results: list[Any] = [None] * len(jobs)
    failed = []
    while pending:  # as each ends, so a long sweep shows its progress
        ready, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready[0])
        try:
            out = ray.get(ready[0])
        except Exception as e:  # a crash on the worker: its last line (the traceback is in Ray's log)
            lines = str(e).strip().splitlines()
            out = _Failed(f"{type(e).__name__}: {lines[-1] if lines else ''}")
        if isinstance(out, _Failed):
            failed.append(f"{jobs[i].name}: {out.message}")
        else:
            results[i] = out
            log(f"done {jobs[i].name}")
    if failed:
        raise UserError(f"{len(failed)} of {len(jobs)} jobs failed (the others are saved; run the same "
                        "command again to retry only these): " + " | ".join(failed))
    return results


# ---- the jobs themselves -------------------------------------------------------------------

_DATA: dict[tuple[str, bool], Cifar10] = {}


def forget_data() -> None:
    """Drop the per-process copy (a notebook kernel should not keep 150 MB of images alive)."""
    _DATA.clear()


def cached_data(cfg: TrainConfig, log: Log = print) -> Cifar10:
    """CIFAR-10 for ``cfg``, the folder read once per process (a Ray worker is reused for several runs)."""
    key = (str(Path(cfg.data_dir).resolve()), cfg.download)
    if key not in _DATA:
        _DATA[key] = load_cifar10(cfg.data_dir, download=cfg.download, log=log)
    return load_data(cfg, log, loaded=_DATA[key])


def finished_history(run_dir: str | Path) -> dict[str, Any] | None:
    """A run folder's history if the run finished, else None."""
    path = Path(run_dir) / "history.json"
    try:
        history = read_json(path, "the run's history")
    except DamagedFile:  # unfinished (or cut short): the run is not finished, and runs again
        return None
    return history if "final_test_acc" in history else None


def train_job(config: dict[str, Any], log: Log = print) -> dict[str, Any]:
    """Train ``config`` into its ``out`` folder by the run folder's one rule (:mod:`helpers.run`):
    a finished run is read back (``Run.fit``; :func:`run_jobs` reads it before, through the job's
    ``done``), one with a checkpoint continued, one stopped before its first epoch ended started
    again, any other refused (never overwritten)."""
    cfg = TrainConfig.from_dict(config)
    with Run.open(cfg, cached_data(cfg, log), log) as job:
        return job.fit()


def range_test_job(config: dict[str, Any], out: str, name: str, log: Log = print) -> dict[str, float]:
    """The range test of ``config`` saved as ``out/name``; its suggested LRs."""
    cfg = TrainConfig.from_dict(config)
    result = find_lrs(cfg, cached_data(cfg, log), log=log)
    result.save(Path(out), name)
    return result.suggestions


def saved_suggestions(path: Path) -> dict[str, float] | None:
    return RangeTestResult.load(path).suggestions if path.is_file() else None


def command_job(argv: list[str], log: Log = print) -> int:
    """``python argv...`` run to its end in this repository's folder (a queue's run: a fresh
    process each, as from the shell), with the torch threads this job was given."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    code = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env).returncode
    if code:
        raise UserError(f"{' '.join(argv[:2])} ... exited with status {code} (its output is above)")
    return code
