"""Bad input, the cases of the robustness issue that no other test file covers, and an index of
where the rest are tested. Each ends in a message naming the problem and the fix.

Elsewhere:
- config (unknown key, wrong type, out-of-range t / sigma / gamma / i_start / epoch, empty list,
  unknown prompt, bad mask rectangle, unknown Part A model) at DAG build, nothing written:
  tests/test_workflow.py::test_bad_config_fails_at_dag_build_naming_the_key,
  tests/test_part_a.py::test_bad_part_a_config
- missing, truncated, RGBA, 16-bit, CMYK and huge images; wrong-size, all-zero and all-one masks:
  tests/test_part_a.py::test_load_png_converts_and_rejects, tests/test_deepfloyd.py (rgb inputs, masks)
- corrupt, truncated and foreign checkpoints: tests/test_train.py::test_load_checkpoint_*
- MNIST failing its hash, a corrupt download, nothing left behind: tests/test_data.py
- gated, not found, offline and unreachable DeepFloyd weights, token never shown:
  tests/test_deepfloyd.py::test_fetch_*
- a killed training job, identical reruns: tests/test_faults.py
"""

from __future__ import annotations

import pytest
import torch

from fundiff import device, train

from .test_train import small_recipe


def test_cuda_requested_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(device.DeviceError) as err:
        device.resolve("cuda")
    msg = str(err.value)
    assert "no CUDA GPU" in msg and "device: auto" in msg and "--config device=cpu" in msg
    assert device.resolve("auto").device.type == "cpu"  # auto never fails


def test_checkpoint_from_a_different_width(tmp_path):
    recipe = small_recipe("ddpm/class_cond")
    path = tmp_path / "epoch_001.pt"
    train.save_checkpoint(train.init_checkpoint(recipe, "ddpm/class_cond", 0), path)
    with pytest.raises(train.CheckpointError) as err:
        train.load_checkpoint(path, expect_recipe={**recipe, "hidden": recipe["hidden"] * 2})
    msg = str(err.value)
    assert "different settings" in msg and "hidden" in msg and "Delete" in msg


def test_unknown_config_values_at_runtime_are_refused():
    with pytest.raises(ValueError, match="device must be one of"):
        device.resolve("tpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        device.resolve("cpu", "fp8")
