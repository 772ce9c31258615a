"""An independent reference: D. Page's published 24-epoch recipe (cifar10-fast, ``dawn.py``).

    python -m benchmarks.reference --data-dir DIR --out RUN_DIR [--width 0.25] [--seed 0]
                                   [--block-order page|assignment] [--device auto|cpu|cuda]
                                   [--precision auto|fp32|bf16|fp16]

Why it exists: the project's default ends near 91% at full width, Page's recipe near 94% on the
original CIFAR-10. This file re-implements his recipe without the project's model, loaders,
augmentation, schedule or training loop (it takes only the decoded uint8 arrays from
``helpers.data``), so that both can be trained on the same JPEG copy and compared: if this ends
near our default, the data explains the gap; if it ends well above, our code loses points.

What it follows (read from davidcpage/cifar10-fast: dawn.py, torch_backend.py, core.py):
  * network: conv3x3 -> BN -> ReLU [-> MaxPool2d(2)] blocks (``--block-order assignment`` puts
    the pool right after the conv, as the assignment orders it); residual (conv-BN-ReLU) x 2 in
    layer1 and layer3; MaxPool2d(4) -> Linear(512, 10, no bias) -> x 0.125. BN: eps 1e-5,
    momentum 0.1, weight 1, bias 0 (his BatchNorm's init).
  * loss: cross-entropy *summed* over the batch; LR = schedule / batch, weight decay 5e-4 x batch.
  * update: his ``nesterov_update``: the LR is applied *inside* the momentum buffer,
        dw = -lr (g + wd w);  v = m v + dw;  w = w + dw + m v
    (torch's SGD keeps lr outside the buffer: the same only while the LR is constant).
  * LR: piecewise linear 0 -> 0.4 at epoch 5 -> 0 at epoch 24, per step (step k of an epoch of
    n steps reads the schedule at epoch + k/n), momentum 0.9 fixed.
  * data: normalise with the training set's mean/std, reflect-pad 4; per epoch a random 32x32
    crop, a horizontal flip with p 1/2, and an 8x8 cutout (set to 0 = the mean) wholly inside
    the crop; batch 512, shuffled, the last partial batch dropped. Evaluation in eval mode.
  * precision: autocast by the product's rule (``helpers.train.auto_precision``: bf16 where the GPU
    or CPU computes it, fp16 with a GradScaler on other GPUs, else fp32); Page ran the model in
    pure fp16 with fp32 BN, which autocast approximates.

It writes ``config.json`` / ``history.json`` (and ``checkpoint.pt`` after each epoch, so an
interrupted run continues with the same command) in the layout ``helpers train`` uses, so
``benchmarks/collect_runs.py`` and the results tables read it as one more arm.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import parser
from helpers.data import load_cifar10  # the decoded uint8 arrays, nothing else
from helpers.errors import UserError  # its one-line errors: a missing data folder
from helpers.provenance import machine  # what the run's numbers depend on: CPU, threads, versions
from helpers.train import DTYPES, auto_precision  # the device's precision rule, the same for both arms

# ---- every setting of the recipe, in one place ----------------------------------------------
HYP = {
    "epochs": 24,
    "peak_epoch": 5,
    "lr_peak": 0.4,            # per image: the optimizer sees lr_peak / batch on a summed loss
    "batch_size": 512,
    "momentum": 0.9,
    "weight_decay": 5e-4,      # per image: the optimizer sees weight_decay x batch
    "logit_scale": 0.125,
    "channels": (64, 128, 256, 512),
    "pad": 4,
    "crop": 32,
    "cutout": 8,
    "bn_eps": 1e-5,
    "bn_momentum": 0.1,
    "eval_batch": 512,
}
# Page's normalisation constants (torch_backend.py), in 0..255 units.
MEAN = (125.31, 122.95, 113.87)
STD = (62.99, 62.09, 66.70)


# ---- network --------------------------------------------------------------------------------
def conv_bn(c_in: int, c_out: int, pool: bool, order: str) -> nn.Sequential:
    bn = nn.BatchNorm2d(c_out, eps=HYP["bn_eps"], momentum=HYP["bn_momentum"])
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    if not pool:
        return nn.Sequential(conv, bn, nn.ReLU())
    if order == "page":
        return nn.Sequential(conv, bn, nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(conv, nn.MaxPool2d(2), bn, nn.ReLU())


class Residual(nn.Module):
    def __init__(self, c: int, order: str) -> None:
        super().__init__()
        self.res = nn.Sequential(conv_bn(c, c, False, order), conv_bn(c, c, False, order))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


class Net(nn.Module):
    def __init__(self, width: float = 1.0, order: str = "page") -> None:
        super().__init__()
        c0, c1, c2, c3 = (max(1, round(c * width)) for c in HYP["channels"])
        self.body = nn.Sequential(
            conv_bn(3, c0, False, order),
            conv_bn(c0, c1, True, order), Residual(c1, order),
            conv_bn(c1, c2, True, order),
            conv_bn(c2, c3, True, order), Residual(c3, order),
            nn.MaxPool2d(4), nn.Flatten(), nn.Linear(c3, 10, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * HYP["logit_scale"]


# ---- optimizer: Page's Nesterov update --------------------------------------------------------
class PageNesterov(torch.optim.Optimizer):
    """``nesterov_update`` of cifar10-fast's torch_backend: lr inside the momentum buffer.
    A torch Optimizer only so that GradScaler can unscale and skip steps on fp16."""

    def __init__(self, params, lr: float, momentum: float, weight_decay: float) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for group in self.param_groups:
            for w in group["params"]:
                if w.grad is None:
                    continue
                v = self.state[w].setdefault("v", torch.zeros_like(w))
                dw = (w.grad + group["weight_decay"] * w) * -group["lr"]
                v.mul_(group["momentum"]).add_(dw)
                w.add_(dw + group["momentum"] * v)


def lr_at(step: int, steps_per_epoch: int, epochs: int = HYP["epochs"], peak: float = HYP["peak_epoch"]) -> float:
    """Per-image LR at ``step`` (of ``steps_per_epoch`` an epoch): linear 0 -> lr_peak at ``peak`` -> 0 at ``epochs``."""
    return float(np.interp(step / steps_per_epoch, [0, peak, epochs], [0.0, HYP["lr_peak"], 0.0]))


def epoch_lrs(epoch: int, steps: int, epochs: int = HYP["epochs"], peak: float = HYP["peak_epoch"]) -> list[float]:
    """The per-image LRs of 0-based ``epoch``'s steps. His ``opt_step`` counts steps from 1 before it
    reads the schedule, so an epoch's k-th step reads it at epoch + k / steps: the first step of
    the run is already above 0, the last one reads 0."""
    return [lr_at(epoch * steps + i + 1, steps, epochs, peak) for i in range(steps)]


# ---- data -----------------------------------------------------------------------------------
def preprocess(x: np.ndarray, pad: int = 0) -> torch.Tensor:
    """uint8 NHWC -> normalised float32 NCHW, reflect-padded by ``pad`` (his pad, then normalise)."""
    t = torch.as_tensor(x).permute(0, 3, 1, 2).float()
    t = (t - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return F.pad(t, (pad,) * 4, mode="reflect") if pad else t


def draw_choices(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each image's random choices for one epoch (his Crop, FlipLR, Cutout)."""
    room = 2 * HYP["pad"]
    inner = HYP["crop"] - HYP["cutout"]
    return {"x0": rng.integers(0, room + 1, n), "y0": rng.integers(0, room + 1, n),
            "flip": rng.random(n) < 0.5,
            "cx": rng.integers(0, inner + 1, n), "cy": rng.integers(0, inner + 1, n)}


def augment(padded: torch.Tensor, c: dict[str, torch.Tensor]) -> torch.Tensor:
    """Crop -> flip -> cutout on a batch of padded images, by index arithmetic."""
    n, size, k = len(padded), HYP["crop"], HYP["cutout"]
    ar = torch.arange(size, device=padded.device)
    rows = c["y0"].view(n, 1) + ar                                       # (n, 32)
    cols = c["x0"].view(n, 1) + torch.where(c["flip"].view(n, 1), size - 1 - ar, ar)
    out = padded[torch.arange(n, device=padded.device).view(n, 1, 1, 1), torch.arange(3, device=padded.device)
                 .view(1, 3, 1, 1), rows.view(n, 1, size, 1), cols.view(n, 1, 1, size)]
    cy, cx = c["cy"].view(n, 1), c["cx"].view(n, 1)
    hole = ((ar >= cy) & (ar < cy + k)).view(n, 1, size, 1) & ((ar >= cx) & (ar < cx + k)).view(n, 1, 1, size)
    return out.masked_fill(hole, 0.0)


def train_batches(padded: torch.Tensor, labels: torch.Tensor, seed: int, epoch: int):
    """Shuffled batches of one epoch, the last partial batch dropped; reproducible from (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(labels))
    c = draw_choices(len(labels), rng)
    bs = HYP["batch_size"]
    for i in range(len(labels) // bs):
        idx = order[i * bs:(i + 1) * bs]
        sel = {k: torch.as_tensor(v[idx]).to(padded.device) for k, v in c.items()}
        ix = torch.as_tensor(idx).to(padded.device)
        yield augment(padded.index_select(0, ix), sel), labels.index_select(0, ix)


# ---- training -------------------------------------------------------------------------------
def make_optimizer(model: nn.Module, dtype: torch.dtype | None) -> tuple[PageNesterov, torch.amp.GradScaler]:
    """His optimizer (weight decay x batch, on a summed loss) and a loss scaler, on for fp16 only."""
    dev = next(model.parameters()).device
    opt = PageNesterov(model.parameters(), lr=0.0, momentum=HYP["momentum"],
                       weight_decay=HYP["weight_decay"] * HYP["batch_size"])
    return opt, torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)


def train_epoch(model: nn.Module, opt: PageNesterov, scaler: torch.amp.GradScaler, batches, lrs: list[float],
                dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One pass at per-image LRs ``lrs`` (one a step); (summed loss, correct, images) on the device."""
    dev = next(model.parameters()).device
    total, correct, seen = torch.zeros((), device=dev), torch.zeros((), device=dev), 0
    for (x, y), lr in zip(batches, lrs):
        for g in opt.param_groups:
            g["lr"] = lr / len(y)  # his LR is per image: the loss is summed over the batch
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            out = model(x.contiguous(memory_format=torch.channels_last))
        out = out.float() if dtype is not None else out  # the loss in fp32 under autocast; as computed otherwise
        loss = F.cross_entropy(out, y, reduction="sum")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        total += loss.detach()
        correct += (out.argmax(1) == y).sum()
        seen += len(y)
    return total, correct, seen


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """``precision`` on ``device`` (None: fp32); "auto" is the product's rule, so that both arms of a
    comparison run in the same precision on every device."""
    return DTYPES[auto_precision(device) if precision == "auto" else precision]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), HYP["eval_batch"]):
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            out = model(x[i:i + HYP["eval_batch"]]).float()
        loss += float(F.cross_entropy(out, y[i:i + HYP["eval_batch"]], reduction="sum"))
        correct += int((out.argmax(1) == y[i:i + HYP["eval_batch"]]).sum())
    model.train()
    return loss / len(y), correct / len(y)


def run(data_dir: str, out: str, width: float = 1.0, seed: int = 0, order: str = "page",
        device: str = "auto", precision: str = "auto", limit_train: int = 0, epochs: int | None = None,
        log=print) -> dict:
    """Train the recipe into ``out`` (continuing its checkpoint if there is one); returns the history."""
    epochs = epochs or HYP["epochs"]
    peak = min(HYP["peak_epoch"], epochs / 2)
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    dtype = autocast_dtype(dev, precision)
    data = load_cifar10(data_dir, download=False, log=log)
    train, test = data.train, data.test
    if limit_train:
        keep = np.sort(np.random.default_rng(seed).permutation(len(train))[:limit_train])
        train = type(train)(train.x[keep], train.y[keep])
    if len(train) < HYP["batch_size"]:
        raise ValueError(f"fewer training images ({len(train)}) than one batch ({HYP['batch_size']}); "
                         "point --data-dir at CIFAR-10 (or raise --limit-train)")
    # channels_last: speed only (tensor cores on CUDA, oneDNN's NHWC kernels on the CPU)
    fmt = torch.channels_last
    padded = preprocess(train.x, HYP["pad"]).to(dev)
    ytr = torch.as_tensor(train.y).to(dev)
    xte = preprocess(test.x).to(dev).contiguous(memory_format=fmt)
    yte = torch.as_tensor(test.y).to(dev)
    torch.manual_seed(seed)
    model = Net(width, order).to(dev).to(memory_format=fmt)
    bs = HYP["batch_size"]
    opt, scaler = make_optimizer(model, dtype)
    steps = len(ytr) // bs
    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    history = {"epochs": [], "lr": [], "momentum": [], "steps_per_epoch": steps}
    start = 0
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"]) if scaler.is_enabled() else None
        history, start = state["history"], state["epoch"]
        log(f"resuming {run_dir} after epoch {start}")
    # pragma: no mutate start (the run's provenance record: labels, not the recipe)
    names = {"page": "ref", "assignment": "ref-assignment-order"}  # the ladder's arm names
    config = {"arm": names[order], "block_order": order, "width": width, "seed": seed, "epochs": epochs,
              "max_at_epoch": peak, "batch_size": bs, "lr_max": HYP["lr_peak"], "lr_min": 0.0,
              "lr_max_rule": "fixed (Page)", "schedule": "page_piecewise_linear", "momentum": HYP["momentum"],
              "nesterov": True, "weight_decay": HYP["weight_decay"], "logit_scale": HYP["logit_scale"],
              "seed_data": seed, "data_dir": str(data_dir), "limit_train": limit_train, "hyp": dict(HYP),
              "command": "python -m benchmarks.reference " + " ".join(sys.argv[1:]) if __name__ == "__main__" else "",
              "resolved": {"device": str(dev), "precision": {None: "fp32", torch.bfloat16: "bf16",
                                                             torch.float16: "fp16 + GradScaler"}[dtype],
                           "device_name": (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                                           else f"CPU ({os.cpu_count()} cores)"),
                           "train_images": len(ytr), "test_images": len(yte), "torch": torch.__version__,
                           "data_source": data.source,
                           "parameters": sum(p.numel() for p in model.parameters()), **machine()}}
    # pragma: no mutate end
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        lrs = epoch_lrs(epoch, steps, epochs, peak)
        total, correct, seen = train_epoch(model, opt, scaler, train_batches(padded, ytr, seed, epoch), lrs, dtype)
        history["lr"] += lrs
        history["momentum"] += [HYP["momentum"]] * steps
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        train_seconds = time.perf_counter() - t0
        test_loss, test_acc = evaluate(model, xte, yte, dtype)
        row = {"epoch": epoch + 1, "train_loss": float(total) / seen, "train_acc": float(correct) / seen,
               "test_loss": test_loss, "test_acc": test_acc, "lr_last": history["lr"][-1],
               "train_seconds": round(train_seconds, 2), "seconds": round(time.perf_counter() - t0, 2)}
        history["epochs"].append(row)
        log(f"epoch {epoch + 1:2d}/{epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
            f"test loss {test_loss:.4f} acc {test_acc:.4f}  {row['seconds']:.1f}s")
        tmp = ckpt_path.with_name("checkpoint.pt.tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history,
                    "scaler": scaler.state_dict(), "epoch": epoch + 1}, tmp)
        os.replace(tmp, ckpt_path)
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    history["final_test_acc"] = history["epochs"][-1]["test_acc"]
    history["total_seconds"] = round(sum(e["seconds"] for e in history["epochs"]), 1)
    (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    return history


def main(argv: list[str] | None = None) -> int:
    # pragma: no mutate start (the command line's wording)
    p = parser(__doc__, "python -m benchmarks.reference")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True, help="run folder; a folder holding a checkpoint is continued")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block-order", choices=("page", "assignment"), default="page")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    p.add_argument("--limit-train", type=int, default=0, help="a seeded subset of N training images (tests)")
    p.add_argument("--epochs", type=int, default=None, help="shorter runs for tests (peak at min(5, epochs/2))")
    # pragma: no mutate end
    a = p.parse_args(argv)
    if a.width <= 0:
        p.exit(2, "error: --width must be a positive number (1.0 is the full network)\n")
    try:
        h = run(a.data_dir, a.out, a.width, a.seed, a.block_order, a.device, a.precision, a.limit_train, a.epochs)
    except (ValueError, UserError) as e:
        p.exit(2, f"error: {e}\n")
    print(f"final test accuracy: {100 * h['final_test_acc']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
