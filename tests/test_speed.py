"""benchmarks/speed.py on the CPU: every variant timed, FLOPs counted, the table labelled a proxy."""
import json

import pytest

from benchmarks import speed
from benchmarks.render import speed_table


@pytest.mark.slow
def test_a_cpu_run_times_ours_and_the_reference_and_labels_a_proxy(tmp_path, capsys):
    out = tmp_path / "speed.json"
    speed.main(["--out", str(out), "--width", "0.0625", "--images", "1024", "--epochs", "2",
                "--variants", "ours-eager", "reference"])
    s = json.loads(out.read_text())
    assert s["proxy"] is True and s["device"] == "cpu" and [r["variant"] for r in s["rows"]] == ["ours-eager", "reference"]
    for r in s["rows"]:
        assert r["precision"] == "fp32" and r["steps_per_epoch"] == 2 and len(r["epoch_seconds"]) == 2
        assert r["images_per_second"] > 0 and r["peak_tflops"] is None and r["fraction_of_peak"] is None
    # the same network: the same convolutions, so nearly the same count (pools and BN are not counted)
    ours, ref = (r["step_gflops"] for r in s["rows"])
    assert ours == pytest.approx(ref, rel=0.01) and ours > 0
    text = capsys.readouterr().out
    assert "**A proxy (not the full network on a GPU).**" in text and "| reference | fp32 |" in text and "| 1.00x |" in text


def test_flops_of_the_full_network_and_peaks_by_name():
    import torch

    from helpers.model import ResNet9

    # forward multiply-adds an image, conv by conv (map side, c_in, c_out), 2 FLOPs each
    convs = [(32, 3, 64), (32, 64, 128), (16, 128, 128), (16, 128, 128), (16, 128, 256), (8, 256, 512),
             (4, 512, 512), (4, 512, 512)]
    forward = 2 * (sum(s * s * ci * co * 9 for s, ci, co in convs) + 512 * 10)
    meta = torch.device("meta")  # torch counts the same FLOPs there, without doing the arithmetic
    step = speed.step_flops(ResNet9().to(meta).to(memory_format=torch.channels_last), meta) / 512
    assert 2.0 * forward < step < 3.0 * forward  # the backward pass: about twice the forward
    assert speed.peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert speed.peak_tflops("NVIDIA H100 PCIe", "fp16") == 756.0
    assert speed.peak_tflops("Tesla T4", "fp16") == 65.0 and speed.peak_tflops("NVIDIA L4", "bf16") == 121.0
    assert speed.peak_tflops("Tesla T4", "fp32") is None and speed.peak_tflops("Some GPU", "fp16") is None


def test_speed_table_ratios_and_fraction_of_peak():
    row = dict(precision="bf16", median_epoch_seconds=0.5, images_per_second=1e5, epochs_24_seconds=12.0,
               step_gflops=600.0, achieved_tflops=116.4, fraction_of_peak=0.1177, first_epoch_excess_seconds=30.0)
    s = {"device_name": "GPU", "torch": "2", "width": 1.0, "images": 50000, "batch_size": 512, "epochs_timed": 3,
         "proxy": False, "command": "c",
         "rows": [dict(row, variant="ours-compile", median_epoch_seconds=0.4), dict(row, variant="reference")]}
    text = speed_table(s)
    assert "| ours-compile | bf16 | 0.400 | 0.80x |" in text and "| 11.8% |" in text and "proxy" not in text
