"""benchmarks/fp16_cpu.py: fp16 convolution backward on the CPU from widened operands gives torch's
own fp16 gradients (at fp16's rounding), and touches nothing else."""
from __future__ import annotations

import contextlib
import sys

import pytest
import torch
import torch.nn.functional as F

from benchmarks.fp16_cpu import WideConvBackward, main


def grads(dtype: torch.dtype | None, wide: bool) -> list[torch.Tensor]:
    """Input and parameter gradients of a small conv-BN-ReLU-conv net under autocast in ``dtype``
    (None: fp32), with or without the tool's mode."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
                              torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3, padding=1, bias=False))
    x = torch.randn(6, 3, 10, 10, requires_grad=True)
    with WideConvBackward() if wide else contextlib.nullcontext():
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(net(x).flatten(1)[:, :10], torch.arange(6) % 10)
        (loss * 256).backward()  # scaled, as the GradScaler does
    return [x.grad, *(p.grad for p in net.parameters())]


def test_fp16_gradients_are_torchs_own_at_fp16_rounding():
    native, wide = grads(torch.float16, False), grads(torch.float16, True)
    for a, b in zip(native, wide):
        assert a.dtype == b.dtype == torch.float32  # the master weights' gradients, as without the tool
        assert (a - b).norm() <= 1e-3 * a.norm()


def test_the_convolution_backward_is_widened_and_rounded_back_to_fp16():
    seen = []

    class Spy(WideConvBackward):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = super().__torch_dispatch__(func, types, args, kwargs)
            if func is torch.ops.aten.convolution_backward.default:
                seen.append((args[0].dtype, [None if g is None else g.dtype for g in out]))
            return out

    w = torch.randn(4, 3, 3, 3, dtype=torch.float16)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float16)
    g = torch.randn(2, 4, 6, 6, dtype=torch.float16)
    with Spy():
        out = torch.ops.aten.convolution_backward.default(g, x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                                                          [True, True, False])
    assert seen == [(torch.float16, [torch.float16, torch.float16, None])]
    wide = torch.ops.aten.convolution_backward.default(g.float(), x.float(), w.float(), None, [1, 1], [0, 0],
                                                       [1, 1], False, [0, 0], 1, [True, True, False])
    assert torch.equal(out[0], wide[0].half()) and torch.equal(out[1], wide[1].half())


@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_fp32_and_bf16_pass_through_bit_for_bit(dtype):
    for a, b in zip(grads(dtype, False), grads(dtype, True)):
        assert torch.equal(a, b)


def test_main_runs_the_module_with_its_arguments_under_the_mode(tmp_path, monkeypatch, capsys):
    (tmp_path / "probe_fp16_cpu.py").write_text(
        "import sys\nfrom torch.utils._python_dispatch import _get_current_dispatch_mode as mode\n"
        "print(type(mode()).__name__, sys.argv[1:])\nraise SystemExit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit) as stop:
        main(["-m", "probe_fp16_cpu", "--width", "0.125"])
    assert stop.value.code == 3
    assert capsys.readouterr().out.splitlines()[-1] == "WideConvBackward ['--width', '0.125']"


def test_an_unknown_module_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["-m", "no_such_module_here"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "no_such_module_here" in err


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_other_dtypes_call_torchs_kernel_untouched(dtype):
    args = (torch.randn(2, 4, 6, 6, dtype=dtype), torch.randn(2, 3, 8, 8, dtype=dtype),
            torch.randn(4, 3, 3, 3, dtype=dtype), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, False])
    plain = torch.ops.aten.convolution_backward.default(*args)
    with WideConvBackward():
        moded = torch.ops.aten.convolution_backward.default(*args)
    assert all(a.dtype == b.dtype == dtype and torch.equal(a, b) for a, b in zip(plain[:2], moded[:2]))
