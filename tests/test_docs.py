"""The documents stay true to the code. Every example command of README.md, config/README.md and
profiles/README.md runs; the README stays a guide with its pictures in the repository and CI's
test command in it; every config key is documented; the rule graph matches the rules; and no
comment points to an issue number or a README section.

The commands are read from the documents' fenced ```bash / ```sh / ```console blocks, whatever
they are at the time, and split at `&&` and `;`. Each piece must match one entry of HANDLED:
- Snakemake commands run as a dry run (`-n` added) in a copy of the workflow, with a temporary
  HOME that holds the site profile the documents describe (~/.config/snakemake/mycluster);
  nothing is written in the repository;
- quick commands (the config-file checker, writing the site profile) run as they are, there too;
- commands that install, run the test suite, or need a GPU are matched to the test that covers
  them (which must exist) or skipped with their reason.
A piece no entry knows fails the test: add it to HANDLED with what covers it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .test_configfile import _copy_workflow
from .test_workflow import REPO

DOCS = ["README.md", "config/README.md", "profiles/README.md"]
LANGUAGES = {"bash", "sh", "shell", "console"}
VENV = Path(sys.executable).parent.parent

# (pattern of a command piece, what happens: "dry-run", "run", "test:<tests/file.py::name>" or "skip:<reason>")
HANDLED = [
    (r"(\.venv/bin/)?snakemake\b", "dry-run"),
    (r"(\.venv/bin/)?python3? -m fundiff\.configfile\b", "run"),
    (r"mkdir -p ~/\.config/snakemake/\S+$", "run"),
    (r"printf .* > ~/\.config/snakemake/\S+/config\.yaml$", "run"),
    (r"python3 -m venv \.venv$", "skip:creates the virtual environment the tests themselves run in"),
    (r"tools/install\.sh( test)?$", "test:tests/test_docs.py::test_ci_runs_the_readme_test_command"),  # .ci/run runs it from a clean checkout
    (r"tools/draw_rulegraph\.sh$", "test:tests/test_docs.py::test_rulegraph_picture_matches_the_rules"),
    (r"(\.venv/bin/)?pip install -q -e \.$", "test:tests/test_envs.py::test_every_imported_package_is_declared_and_python_is_open_ended"),
    (r"(\.venv/bin/)?pip install -q -e '\.\[test\]'$", "test:tests/test_envs.py::test_env_pins_agree_with_pyproject"),
    (r"\(command -v chromium\b.*\)$", "test:tests/test_workflow.py::test_report_in_headless_chromium"),
    (r"(\.venv/bin/)?python -m pytest\b", "skip:runs the test suite itself"),
    (r"(\.venv/bin/)?python -m bench sampling\b", "test:tests/test_bench.py::test_bench_sampling_tiny"),
    (r"(\.venv/bin/)?python -m bench recipe\b", "test:tests/test_bench.py::test_bench_recipe_tiny"),
    (r"(\.venv/bin/)?python -m bench threads\b", "test:tests/test_bench.py::test_thread_capping"),
    (r"(\.venv/bin/)?python -m bench dag\b", "test:tests/test_bench.py::test_dag_runs_a_workflow_from_nothing_and_judges_the_bar"),
    (r"(\.venv/bin/)?python -m bench train\b", "test:tests/test_bench.py::test_bench_train_tiny"),
    (r"(\.venv/bin/)?python -m bench quality\b", "test:tests/test_bench.py::test_bench_quality_reproduces_the_pipelines_reading_and_reads_more_seeds"),
    # the README's GPU device check: `b="timeout ... bench recipe --device cuda ..."`, then `$b ...`
    (r'b="timeout \d+ \.venv/bin/python -m bench recipe --device cuda\b.*"$', "skip:the GPU device check (needs CUDA); its CPU path: tests/test_bench.py::test_recipe_cuda_without_gpu_exits_with_a_message"),
    (r"\$b\b", "skip:the GPU device check (needs CUDA)"),
]

# the site profile the documents tell a cluster user to write (profiles/README.md)
SITE_PROFILE = 'default-resources:\n  slurm_account: "<your-account>"\n  slurm_partition: "<your-partition>"\n'


def _pieces(line: str) -> list[str]:
    """A command line split at `&&` and `;` outside quotes and parentheses."""
    out, cur, depth, quote, i = [], "", 0, None, 0
    while i < len(line):
        ch = line[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (line.startswith("&&", i) or ch == ";"):
            out.append(cur)
            cur, i = "", i + (2 if ch == "&" else 1)
            continue
        cur += ch
        i += 1
    return [p.strip() for p in out + [cur] if p.strip()]


def doc_commands(doc: str) -> list[tuple[int, str]]:
    """(line number, command piece) of every fenced shell block of `doc`."""
    text = (REPO / doc).read_text()
    found = []
    for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, flags=re.M | re.S):
        if m.group(1) not in LANGUAGES:
            continue
        first = text[: m.start(2)].count("\n") + 1
        lines, joined = m.group(2).splitlines(), []
        for n, line in enumerate(lines):
            if m.group(1) == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if joined and joined[-1][1].endswith("\\"):
                joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line.strip())
            elif line.strip() and not line.lstrip().startswith("#"):
                joined.append((first + n, line.strip()))
        found += [(n, piece) for n, line in joined for piece in _pieces(line)]
    return found


def _action(piece: str) -> str | None:
    piece = re.sub(r"\s*\|\s*tail -\d+$", "", piece)
    return next((what for pattern, what in HANDLED if re.match(pattern, piece)), None)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A copy of the workflow (with the test's virtual environment as .venv) and a HOME holding the site profile."""
    base = tmp_path_factory.mktemp("docs")
    work = _copy_workflow(base)
    (work / ".venv").symlink_to(VENV)
    home = base / "home"
    (home / ".config" / "snakemake" / "mycluster").mkdir(parents=True)
    (home / ".config" / "snakemake" / "mycluster" / "config.yaml").write_text(SITE_PROFILE)
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(work / "src"), "HF_HOME": str(base / "hf"),
           "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
           "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    return work, env


def test_every_command_is_known():
    """Each piece of every block matches an entry of HANDLED; each named test exists."""
    unknown = [f"{doc}:{n}: {piece}" for doc in DOCS for n, piece in doc_commands(doc) if _action(piece) is None]
    assert not unknown, "commands test_docs.py does not know (add them to HANDLED with what covers them):\n" + "\n".join(unknown)
    for _, what in HANDLED:
        if what.startswith("test:"):
            path, name = what[5:].split("::")
            assert re.search(rf"^def {name}\(", (REPO / path).read_text(), flags=re.M), f"{what}: no such test"
    assert sum(len(doc_commands(d)) for d in DOCS) >= 15


@pytest.mark.parametrize("doc", DOCS)
def test_document_commands_run(sandbox, doc):
    work, env = sandbox
    failures, ran = [], 0
    for n, piece in doc_commands(doc):
        what = _action(piece)
        if what is None or what.startswith(("skip:", "test:")):
            continue  # unknown ones fail test_every_command_is_known
        command = re.sub(r"^(\.venv/bin/)?snakemake\b", ".venv/bin/snakemake -n", piece) if what == "dry-run" else piece
        proc = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        ran += 1
        out = proc.stdout + proc.stderr
        if proc.returncode != 0 or "Traceback" in out:
            failures.append(f"{doc}:{n}: {command} (exit {proc.returncode})\n{out[-1500:]}")
        elif what == "dry-run" and "This was a dry-run" not in out and "Nothing to be done" not in out:
            failures.append(f"{doc}:{n}: {command}: no dry-run summary\n{out[-1500:]}")
    assert not failures, "\n\n".join(failures)
    assert ran > 0, f"{doc}: no command ran"


# ---------------------------------------------------------------- the documents stay true to the code

ROOT = REPO
README = ROOT / "README.md"


def test_readme_is_a_guide_not_a_diary():
    size = README.stat().st_size
    assert size <= 20_000, f"README.md is {size} bytes; measurements and history belong in docs/"


def test_every_picture_the_readme_shows_is_in_the_repository():
    text = README.read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text) + re.findall(r'<img[^>]*src="([^"]+)"', text)
    assert pictures, "the README shows no picture"
    for rel in pictures:
        assert not rel.startswith(("http://", "https://")), f"{rel}: pictures are committed, not linked"
        assert (ROOT / rel).is_file(), f"README shows {rel}, which is not in the repository"
        assert subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=ROOT, capture_output=True).returncode == 0 or not (ROOT / ".git").exists(), f"{rel} is not tracked by git"


def test_every_markdown_link_resolves():
    for doc in [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "config" / "README.md", ROOT / "profiles" / "README.md"]:
        for rel in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", doc.read_text()):
            if rel.startswith(("http://", "https://", "mailto:")):
                continue
            assert (doc.parent / rel).exists(), f"{doc.relative_to(ROOT)} links to {rel}, which does not exist"


def test_ci_runs_the_readme_test_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    command = ci[-1]
    assert command in README.read_text(), f".ci/run runs {command!r}, which the README's quickstart does not show"


def _schema_keys(node: dict, defs: dict, path: str = "") -> list[str]:
    if "$ref" in node:
        node = defs[node["$ref"].split("/")[-1]]
    keys = []
    for name, sub in (node.get("properties") or {}).items():
        keys.append(f"{path}{name}")
        keys += _schema_keys(sub, defs, f"{path}{name}.")
    for sub in node.get("anyOf", []) + node.get("oneOf", []):
        keys += _schema_keys(sub, defs, path)
    if isinstance(node.get("items"), dict):
        keys += _schema_keys(node["items"], defs, path)
    if isinstance(node.get("additionalProperties"), dict):
        keys += _schema_keys(node["additionalProperties"], defs, path + "<name>.")
    return keys


def test_every_schema_key_is_documented():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    text = (ROOT / "config" / "README.md").read_text()
    documented = set(re.findall(r"`([A-Za-z0-9_.<>]+)", text))
    names = {part for word in documented for part in word.split(".")}
    missing = sorted({k for k in _schema_keys(schema, schema.get("$defs", {})) if k.split(".")[-1] not in names})
    assert not missing, f"config/README.md does not mention these schema keys: {missing}"


def test_comments_stand_on_their_own():
    """Code comments and messages name no issue numbers and no README sections (both move)."""
    pattern = re.compile(r"\bissue \d+|README,? (Speed|section)|README Speed", re.IGNORECASE)
    hits = []
    for folder in ["src", "rules", "scripts", "config", "profiles", "tests", "tools", "Snakefile"]:
        paths = [ROOT / folder] if (ROOT / folder).is_file() else sorted((ROOT / folder).rglob("*"))
        for path in paths:
            if path.is_file() and path.suffix in {".py", ".smk", ".yaml", ".sh", ""} and path.name != Path(__file__).name:
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if pattern.search(line):
                        hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "comments that point to issues or README sections:\n" + "\n".join(hits)


def _graph(dot: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The rules and the edges between them of a `--rulegraph` (Snakemake numbers the nodes in DAG
    order but lists the edges in no fixed order)."""
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.M))
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M)}
    return set(names.values()), edges


def test_rulegraph_picture_matches_the_rules(tmp_path):
    """docs/rulegraph.dot is what `tools/draw_rulegraph.sh` makes from the rules today."""
    committed = (ROOT / "docs" / "rulegraph.dot").read_text()
    snakemake = Path(sys.executable).with_name("snakemake")
    fresh = subprocess.run([str(snakemake), "all", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--rulegraph", "--quiet",
                            "--configfile", str(ROOT / "config" / "laptop.yaml")],
                           capture_output=True, text=True, check=True).stdout
    assert _graph(fresh) == _graph(committed), "the rules changed: run tools/draw_rulegraph.sh and commit docs/rulegraph.*"
    assert (ROOT / "docs" / "rulegraph.svg").is_file()
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed: the SVG's rendering was not checked")
    svg = subprocess.run(["dot", "-Tsvg"], input=committed, capture_output=True, text=True, check=True).stdout
    labels = set(re.findall(r'label = "([^"]+)"', committed))
    assert labels and all(label in svg for label in labels)
    assert all(label in (ROOT / "docs" / "rulegraph.svg").read_text() for label in labels), "docs/rulegraph.svg is older than docs/rulegraph.dot"
