"""Command line: ``python -m helpers {train,lr-find,triangle,report,compare,notebook}``.

Bad input ends with one line ``error: ...`` on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import errno
import shlex
import sys
import time
from pathlib import Path

from . import sweep
from .checkpoint import has_checkpoint
from .config import (AUGMENT_CHOICES, BLOCK_ORDERS, DEVICE_CHOICES, LR_MAX_RULES, LR_MIN_RULES, PRECISIONS,
                     SCHEDULES, TTA_CHOICES, TrainConfig)
from .errors import Interrupted, UserError

D = TrainConfig()


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option ends with one line (not the usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def _lr(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=D.data_dir,
                   help="CIFAR-10 folder: train/<class>/ + test/<class>/, cifar-10-batches-py, "
                        "or where to download it (default: %(default)s)")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="fail instead of downloading when --data-dir holds no CIFAR-10")
    p.add_argument("--batch-size", type=int, default=D.batch_size)
    p.add_argument("--width", type=float, default=D.width, help="channel multiplier; 0.125 = CPU proxy")
    p.add_argument("--block-order", default=D.block_order,
                   help=f"one of {', '.join(BLOCK_ORDERS)}: where the pooling blocks pool (default: %(default)s)")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--device", default=D.device, help=f"one of {', '.join(DEVICE_CHOICES)}")
    p.add_argument("--precision", default=D.precision,
                   help=f"one of {', '.join(PRECISIONS)}: auto = bf16 where the device computes it in hardware "
                        "(A100, L4, H100; CPUs with AVX-512 BF16 or AMX), fp16 with a GradScaler on other GPUs (T4), "
                        "fp32 elsewhere; fp16 on any GPU runs a T4's numerics (default: %(default)s)")
    p.add_argument("--augment", default=D.augment, help=f"one of {', '.join(AUGMENT_CHOICES)}")
    p.add_argument("--limit-train", type=int, default=0, help="use a random subset of N training images")
    p.add_argument("--limit-test", type=int, default=0, help="use a random subset of N test images")
    p.add_argument("--lr-find-iters", type=int, default=D.lr_find_iters, help="range test length in batches")
    p.add_argument("--lr-find-start", type=float, default=D.lr_find_start, help="range test's first LR")
    p.add_argument("--lr-find-end", type=float, default=D.lr_find_end, help="range test's last LR")
    p.add_argument("--lr-max-rule", default=D.lr_max_rule, help=f"one of {', '.join(LR_MAX_RULES)} (default {D.lr_max_rule})")
    p.add_argument("--lr-min-rule", default=D.lr_min_rule, help=f"one of {', '.join(LR_MIN_RULES)} (default {D.lr_min_rule})")
    p.add_argument("--label-smoothing", type=float, default=D.label_smoothing,
                   help="smooth the loss's targets by this much, e.g. 0.2, in training and the range test "
                        "(default: off)")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train ResNet-9 with the one-cycle policy")
    _add_common(t)
    t.add_argument("--out", default="", help="run folder (default: runs/resnet9-<time>): one holding a checkpoint of the same "
                   "settings is continued, one holding files that are not a run's refused; never overwritten")
    t.add_argument("--epochs", type=int, default=D.epochs)
    t.add_argument("--max-at-epoch", type=float, default=D.max_at_epoch)
    t.add_argument("--lr-min", type=_lr, default=D.lr_min, help="number or 'auto' (LR range test)")
    t.add_argument("--lr-max", type=_lr, default=D.lr_max, help="number or 'auto' (LR range test)")
    t.add_argument("--schedule", default=D.schedule, help=f"one of {', '.join(SCHEDULES)} (default: %(default)s)")
    t.add_argument("--momentum", type=float, default=D.momentum)
    t.add_argument("--weight-decay", type=float, default=D.weight_decay)
    t.add_argument("--tta", default=D.tta, help=f"one of {', '.join(TTA_CHOICES)}: test-time augmentation "
                   "(flip: the mean of the logits of each image and its mirror image; default: %(default)s)")
    t.add_argument("--ema", type=float, default=D.ema,
                   help="also evaluate an exponential moving average of the weights with this decay, e.g. 0.99 "
                        "(default 0: off)")
    t.add_argument("--num-workers", type=int, default=D.num_workers)
    t.add_argument("--no-amp", dest="amp", action="store_false", help="fp32 on any device (the same as --precision fp32)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--no-report", dest="report", action="store_false", help="skip the figures at the end")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")

    f = sub.add_parser("lr-find", help="LR range test: writes lr_find.png and lr_find.json")
    _add_common(f)
    f.add_argument("--out", default="lr-find", help="folder for the outputs (default: %(default)s)")

    tri = sub.add_parser("triangle", help="draw Smith's triangular cyclical LR (the zigzag plot)")
    tri.add_argument("--out", default="assets/triangle.png")
    tri.add_argument("--base-lr", type=float, default=0.001)
    tri.add_argument("--max-lr", type=float, default=0.006)
    tri.add_argument("--step-size", type=int, default=2000)
    tri.add_argument("--cycles", type=int, default=3)

    r = sub.add_parser("report", help="render every figure of a finished run into its folder")
    r.add_argument("run_dir")
    r.add_argument("--data-dir", default=None, help="override the data folder recorded in the run")
    r.add_argument("--device", default="auto")
    r.add_argument("--gradcam-layer", default="layer3", choices=("layer3", "layer2"),
                   help="layer3 (4x4 map, default) or layer2 (8x8)")
    c = sub.add_parser("compare", help="one cycle vs a step schedule at equal epoch budgets, N seeds each")
    _add_common(c)
    c.add_argument("--out", default="runs/compare", help="one folder for every run, the summary and figures")
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--arm", dest="arms", action="append", default=None, metavar="SCHEDULE:EPOCHS",
                   help="repeatable; default: one_cycle:8 one_cycle:24 step:8 step:24 one_cycle_annealed:24 "
                        "step:48")
    sweep.add_arguments(c)

    nb = sub.add_parser("notebook", help="execute the notebook headless with parameters overridden "
                                         "(the saved source keeps the assignment's values)")
    nb.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                    help="a parameter cell override, e.g. --set WIDTH=0.125 (repeatable)")
    where = nb.add_mutually_exclusive_group()
    where.add_argument("--output", default=None,
                       help="where to write the executed notebook (default: a new file beside it, NAME.executed.ipynb)")
    where.add_argument("--in-place", action="store_true", help="write the executed notebook over the notebook itself")
    return parser


def _config(args: argparse.Namespace) -> TrainConfig:
    names = set(TrainConfig.__dataclass_fields__)
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def lr_find(cfg: TrainConfig, log=print):
    """``python -m helpers lr-find``: the range test on the training data, its JSON and PNG into a
    new folder ``cfg.out`` (settings, data and the folder checked before the test runs)."""
    from .checkpoint import new_folder
    from .data import load_data
    from .loaders import check_batch_size
    from .lr_finder import find_lrs
    from .report import save_range_test

    cfg.validate()
    data = load_data(cfg)
    check_batch_size(cfg.batch_size, len(data.train))
    out = new_folder(cfg.out)
    js, png = save_range_test(find_lrs(cfg, data, log=log), out)
    log(f"wrote {js} and {png}")


def run(args: argparse.Namespace) -> int:
    if args.command == "train":
        from .data import load_data
        from .run import Run

        started = time.perf_counter()  # the training call's wall time counts loading the data
        if args.resume and has_checkpoint(Path(args.resume)):
            defaults = build_parser().parse_args(["train"])
            ignored = sorted(k for k, v in vars(args).items()
                             if k not in ("resume", "progress", "argv") and v != getattr(defaults, k))
            if ignored:
                print(f"note: --resume continues with the settings in {args.resume}/config.json; ignoring "
                      + ", ".join("--" + k.replace("_", "-") for k in ignored), file=sys.stderr)
        if args.resume:
            job = Run.resume(args.resume)
        else:  # the data is read and checked before the run folder is touched
            cfg = _config(args)
            cfg.validate()
            job = Run.open(cfg, load_data(cfg))
        with job:
            history = job.fit(started)
        print(f"final test accuracy: {history['final_test_acc'] * 100:.2f}%")
    elif args.command == "lr-find":
        lr_find(_config(args))
    elif args.command == "triangle":
        from .plots import plot_triangle

        if args.step_size <= 0 or args.cycles <= 0 or not 0 <= args.base_lr < args.max_lr:
            raise UserError("triangle needs --step-size > 0, --cycles > 0 and 0 <= --base-lr < --max-lr")
        path = plot_triangle(Path(args.out), args.base_lr, args.max_lr, args.step_size, args.cycles)
        print(f"wrote {path}")
    elif args.command == "compare":
        from .compare import DEFAULT_ARMS, compare, parse_arm

        arms = [parse_arm(a) for a in args.arms] if args.arms else list(DEFAULT_ARMS)
        ray, cpus = sweep.settings_from(args)
        summary = compare(_config(args), args.seeds, arms, args.out,
                          command="python -m helpers " + shlex.join(args.argv), ray=ray, cpus_per_job=cpus)
        for name, arm in summary["arms"].items():
            s = arm["final_summary"]
            print(f"{name}: {100 * s['mean']:.2f}% +- {100 * s['std']:.2f} over {s['n']} seeds")
    elif args.command == "notebook":
        from .notebook import NOTEBOOK, execute, parse_overrides

        print(f"wrote {execute(parse_overrides(args.overrides), NOTEBOOK if args.in_place else args.output)}")
    elif args.command == "report":
        from .report import report_run

        for path in report_run(Path(args.run_dir), data_dir=args.data_dir, device=args.device,
                               gradcam_layer=args.gradcam_layer):
            print(f"wrote {path}")
    return 0


# A full disk or quota, no permission, a read-only folder.
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded by commands that write their own command line
    try:
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in WRITE_ERRORS:
            raise
        # a figure or a small file that could not be written; a checkpoint's failure says more above
        print(f"error: cannot write {e.filename or 'a file'}: {e.strerror}; every file already written is kept "
              "(a run continues with --resume RUN_DIR once the folder can be written)", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(e, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
