"""Packaging: the conda environment of the rules agrees with pyproject.toml, every rule uses it,\nevery package the code imports is declared, and the licence and catalog files are there."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
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
    assert python == ["python=3.11"]  # the oldest Python pyproject.toml allows
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


# declared packages that no module imports: each needs its reason beside it in pyproject.toml
NOT_IMPORTED = {"snakemake-executor-plugin-slurm", "sentencepiece", "protobuf", "accelerate", "jsonschema"}


def _imported_modules() -> set[str]:
    found = set()
    files = [*(REPO / "src").rglob("*.py"), *(REPO / "scripts").glob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    for path in [REPO / "Snakefile", *(REPO / "rules").glob("*.smk")]:
        found |= set(re.findall(r"^\s*(?:from|import) (\w+)", path.read_text(), flags=re.M))
    return found - set(sys.stdlib_module_names) - {"fundiff", "__future__"}


def test_every_imported_package_is_declared_and_python_is_open_ended():
    text = (REPO / "pyproject.toml").read_text()
    project = tomllib.loads(text)["project"]
    declared = {_name(r).replace("_", "-") for r in project["dependencies"]}
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_modules()):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(names)
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"
    assert project["requires-python"] == ">=3.11", project["requires-python"]
    for line in text.splitlines():
        m = re.match(r'\s*"([^"]+)",\s*(#.*)?$', line)
        if m and _name(m.group(1)) in NOT_IMPORTED:
            assert m.group(2) and len(m.group(2)) > 10, f"give {m.group(1)} a reason: {line}"
    assert NOT_IMPORTED <= declared


def test_licence_and_workflow_catalog_file():
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "WITHOUT WARRANTY" in licence
    catalog = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    assert catalog["usage"]["software-stack-deployment"]["conda"] is True and catalog["usage"]["report"] is True
