"""A stand-in GPU for CPU-only tests: torch's meta device, made as strict as CUDA about where
operands live.

The meta device alone is lenient: it accepts ``cpu_tensor += meta_tensor`` and
``meta.index_select(0, cpu_index)``, which CUDA refuses, and it cannot read a value back at all
(``.item()``, ``float()``). Under :class:`StrictDevice`, every torch function and tensor method
called with a meta tensor among its operands follows CUDA's rules:

- an operand on the CPU is refused unless it is a 0-dim tensor read as a scalar (CUDA's "CPU
  scalar"), or the call only copies or indexes (``copy_``, ``to``, ``t[...]``, ``t[...] = v``);
- an in-place operation whose target is on the CPU is refused when any operand is on the
  stand-in GPU, whatever its shape (a running sum kept on the host);
- a value read back from the stand-in GPU (``item``, ``float``, ``int``, ``bool``, ``tolist``,
  ``numpy``, ``cpu``, ``to("cpu")``, ``copy_`` into a CPU tensor) is answered with a placeholder: 0 for numbers, zeros for
  tensors and arrays. The numbers a run computes under it are meaningless; where its tensors go
  is what it checks.

Refusals raise :class:`DeviceMismatch` (a RuntimeError, as CUDA's own), naming the operation.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

GPU = torch.device("meta")


class DeviceMismatch(RuntimeError):
    pass


# Calls that move or index data across devices on CUDA too.
_CROSS_DEVICE_OK = {"copy_", "to", "__getitem__", "__setitem__", "cuda", "cpu", "new_tensor", "tensor",
                    "as_tensor", "__get__", "__set__", "data", "device", "is_meta", "dim", "size", "numel",
                    "__len__", "shape", "dtype", "requires_grad_", "detach", "__repr__", "__format__",
                    "stride", "is_contiguous", "element_size", "storage_offset", "untyped_storage",
                    "_has_compatible_shallow_copy_type"}
_READ_BACK = {"item", "__float__", "__int__", "__bool__", "__index__", "tolist", "numpy"}


def _name(func) -> str:
    return getattr(func, "__name__", "") or str(func)


def _placeholder(func_name: str, t: torch.Tensor):
    if func_name in ("__float__",):
        return 0.0
    if func_name in ("__int__", "__index__"):
        return 0
    if func_name == "__bool__":
        return False
    if func_name == "item":
        return False if t.dtype == torch.bool else (0 if not t.is_floating_point() else 0.0)
    if func_name == "tolist":
        return np.zeros(tuple(t.shape)).tolist()
    return np.zeros(tuple(t.shape), dtype=torch.empty((), dtype=t.dtype).numpy().dtype)


class StrictDevice(TorchFunctionMode):
    """Within ``with StrictDevice():`` meta tensors behave, for device placement, as CUDA's do;
    ``torch.autocast("meta", ...)`` is the CPU's autocast (torch has none for meta)."""

    def __enter__(self):
        self._autocast = torch.autocast
        torch.autocast = lambda device_type, *a, **k: self._autocast(
            "cpu" if device_type == "meta" else device_type, *a, **k)
        return super().__enter__()

    def __exit__(self, *exc):
        torch.autocast = self._autocast
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        on_gpu = [t for t in tensors if t.device.type == "meta"]
        if on_gpu and args and isinstance(args[0], torch.Tensor) and args[0].device.type == "meta":
            if name in _READ_BACK:
                return _placeholder(name, args[0])
            if name == "cpu" or (name == "to" and _to_cpu(args[1:], kwargs)):
                return torch.zeros(args[0].shape, dtype=_dtype(args[1:], kwargs) or args[0].dtype)
        if name == "copy_" and args[0].device.type == "cpu" and on_gpu:  # a copy back to the host
            return args[0].zero_()
        if on_gpu and name not in _CROSS_DEVICE_OK:
            _check(name, args, tensors)
        return func(*args, **kwargs)


def _to_cpu(args, kwargs) -> bool:
    target = kwargs.get("device", args[0] if args else None)
    return (isinstance(target, (str, torch.device)) and torch.device(target).type == "cpu")


def _dtype(args, kwargs):
    return kwargs.get("dtype") or next((a for a in args if isinstance(a, torch.dtype)), None)


def _check(name: str, args, tensors: list[torch.Tensor]) -> None:
    on_cpu = [t for t in tensors if t.device.type == "cpu"]
    if not on_cpu:
        return
    in_place = name.endswith("_") and not name.startswith("__") or name.startswith("__i") and name not in (
        "__index__", "__init__", "__iter__")
    target = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if in_place and target is not None and target.device.type == "cpu":
        raise DeviceMismatch(f"{name}: a tensor on the CPU written with an operand on the GPU "
                             "(expected all tensors to be on the same device)")
    big = [t for t in on_cpu if t.dim() > 0]
    if big:
        raise DeviceMismatch(f"{name}: an operand of shape {tuple(big[0].shape)} on the CPU, others on the GPU "
                             "(expected all tensors to be on the same device)")
