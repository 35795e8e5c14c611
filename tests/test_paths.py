"""fundiff.paths: the guidance scale in file names, row selection by it, and the benchmark list."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fundiff import paths

SMOKE = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "smoke.yaml").read_text())


@pytest.mark.parametrize("gamma, suffix", [(None, ""), (5, "_cfg5"), (5.0, "_cfg5"), (7.5, "_cfg7.5"), (0.5, "_cfg0.5"), (12, "_cfg12")])
def test_cfg_suffix_and_parse_are_inverse(gamma, suffix):
    assert paths.cfg_suffix(gamma) == suffix
    assert paths.parse_cfg(suffix) == (None if gamma is None else float(gamma))
    assert re.fullmatch(paths.CFG_WILDCARD, suffix) and re.fullmatch(paths.PART_A_CFG_WILDCARD, suffix)


def test_parse_cfg_reads_the_part_a_extra_prompts_and_rejects_anything_else():
    assert paths.parse_cfg("_prompts_cfg7") == 7.0
    assert re.fullmatch(paths.PART_A_CFG_WILDCARD, "_prompts_cfg7") and not re.fullmatch(paths.CFG_WILDCARD, "_prompts_cfg7")
    for bad in ("_cfg", "cfg5", "_cfg5x", "_cfg-1"):
        with pytest.raises(ValueError, match="guidance suffix"):
            paths.parse_cfg(bad)


def test_at_gamma_matches_the_scale_as_file_names_spell_it():
    frame = pd.DataFrame({"guidance": [1.0, 5.0, 7.5, 5.0], "epoch": [1, 1, 1, 2]})
    assert paths.at_gamma(frame, 5).epoch.tolist() == [1, 2]
    assert paths.at_gamma(frame, 7.5).epoch.tolist() == [1]
    assert paths.at_gamma(frame, None) is frame


def test_sample_and_metrics_files_share_their_settings():
    model = "flow/class_cond"
    settings = paths.sample_settings(SMOKE, model)
    assert paths.sample_files(SMOKE, model) == [paths.samples_png(model, e, g) for e, g in settings]
    assert [f.replace("/metrics", "/samples").replace(".csv", ".png") for f in paths.metrics_files(SMOKE, model)] == paths.sample_files(SMOKE, model)


def test_benchmark_files_follow_the_rules_patterns():
    files = paths.benchmark_files(SMOKE, "tiny")
    assert len(files) == len(set(files)) and files == sorted(files)
    assert paths.BENCHMARKS["render_report"] not in files
    assert "benchmarks/part_a/build_tiny_deepfloyd.tsv" in files and "benchmarks/part_a/readings.tsv" not in files
    assert "benchmarks/part_a/readings.tsv" in paths.benchmark_files(SMOKE, "mnist")
    assert all(f.startswith("benchmarks/") and f.endswith(".tsv") and "{" not in f for f in files)
