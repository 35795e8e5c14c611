"""The training-step benchmark runs end to end at tiny settings and reports what it promises."""

import json
from pathlib import Path

from fundiff import bench

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def test_bench_train_tiny(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    argv = ["train", "--hidden", "8", "--batch", "32", "--steps", "2", "--warmup", "1", "--synthetic",
            "--loss-steps", "3", "--config", str(CONFIG), "--json", str(out_json)]
    results = bench.main(argv)  # exits 0 even when the bar fails (no --strict)
    printed = capsys.readouterr().out

    for mode in ("project", "reference", "plain_bf16"):
        m = results["modes"][mode]
        assert m["ms_per_step"] > 0 and m["images_per_s"] > 0 and m["gflop_per_s"] > 0
        assert mode in printed
    assert results["ratio"] > 0 and "ratio project/reference" in printed
    assert "ms/step" in printed and "images/s" in printed and "GFLOP/s" in printed
    assert ("PASS" in printed) or ("FAIL" in printed)
    assert results["gflop_per_image"] == 6.4 * (8 / 128) ** 2
    lc = results["loss_check"]
    assert lc["project_loss"] > 0 and lc["reference_loss"] > 0 and "loss check" in printed
    assert json.loads(out_json.read_text())["ratio"] == results["ratio"]
