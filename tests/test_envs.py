"""The conda environment of the rules agrees with pyproject.toml, and every rule uses it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NOT_IN_JOBS = ("snakemake",)  # the workflow engine and its plugins run outside the jobs


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req, maxsplit=1)[0].lower()


def test_env_pins_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "torch.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"] and ">=3.11,<3.12" in (REPO / "pyproject.toml").read_text()
    wanted = {_name(r): r.replace(" ", "") for r in project if not _name(r).startswith(NOT_IN_JOBS)}
    got = {_name(r): r.replace(" ", "") for r in pip}
    assert got == wanted  # the same packages with the same version specifiers


def test_every_rule_runs_in_the_env():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        blocks = re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]
        for block in blocks:
            name = block.split(":", 1)[0]
            if "    script:" in block or "    shell:" in block:
                assert re.search(r"^    conda:\n        TORCH_ENV$", block, flags=re.M), f"{smk.name}: rule {name} has no conda: TORCH_ENV"
    assert (REPO / "envs" / "torch.yaml").is_file()
