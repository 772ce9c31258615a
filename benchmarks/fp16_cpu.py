"""Runs a module with fp16 on the CPU at a usable speed: a T4's fp16 numerics, measured where
there is no T4.

    python -m benchmarks.fp16_cpu -m helpers train --device cpu --precision fp16 --width 0.125 ...
    python -m benchmarks.ladder DATA RUNS --precision fp16 ours:0.125:0    # uses it on the CPU

torch computes an fp16 convolution's backward on a CPU in a slow kernel: 99% of an fp16 training
step's time at width 1/8 (torch.profiler, torch 2.14.1), while the fp16 forward and every other op
run at speed; the range test at width 1/8 took 15.8 s a step. Under this tool that one op is
computed from widened operands: its fp16 inputs (the gradient, the activations, the weight) are
converted exactly to fp32, the gradients are computed in fp32 and rounded to fp16, as a GPU does
(torch asks cuDNN for fp32 accumulation in an fp16 convolution: fp16 operands and results). Autocast's casts, every
other op and the GradScaler's scaling and overflow checks are untouched, so the loss scale's
history and the accuracy are the fp16 path's. torch's own kernel gives the same gradients to
1e-5 to 3e-5 of their norm (width 1/8, batch 64) (``tests/test_fp16_cpu.py`` checks 1e-3, and that fp32 and bf16 pass
through bit for bit). The same range test took 1.2 s a step under it, with the CPU shared with
another run.

No library offers this: torch's dispatch mode (``TorchDispatchMode``) is the hook, and this file
the dozen lines around it.
"""
from __future__ import annotations

import importlib.util
import runpy
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks import parser

CONV_BACKWARD = torch.ops.aten.convolution_backward.default


class WideConvBackward(TorchDispatchMode):
    """fp16 convolution backward on the CPU computed in fp32 from its exact fp16 operands and
    rounded back to fp16; every other op (and any other dtype or device) passes through."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        grad = args[0] if args else None
        if func is CONV_BACKWARD and grad.dtype == torch.float16 and grad.device.type == "cpu":
            wide = [a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.float16 else a for a in args]
            return tuple(None if g is None else g.half() for g in func(*wide, **kwargs))
        return func(*args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "python -m benchmarks.fp16_cpu")
    p.add_argument("-m", dest="module", required=True, help="the module to run, as python -m runs it")
    p.add_argument("args", nargs="*", help="its arguments, after the module's name")
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("-m") + 2 if "-m" in argv else len(argv)  # what follows the module is its own
    args = p.parse_args(argv[:cut])
    args.args = argv[cut:]
    if importlib.util.find_spec(args.module) is None:
        p.error(f"no module named {args.module!r}: name one python -m can run, e.g. -m helpers train ...")
    print("fp16 on the CPU: convolution backward computed in fp32 from its fp16 operands, rounded to "
          "fp16 (benchmarks/fp16_cpu.py)", flush=True)
    sys.argv = [args.module, *args.args]
    with WideConvBackward():  # the module's own exit (SystemExit) is this command's
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
