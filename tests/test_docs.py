"""Every example command of README.md, config/README.md and profiles/README.md runs.

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
import subprocess
import sys
from pathlib import Path

import pytest

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
    (r"(\.venv/bin/)?pip install -q -e \.$", "test:tests/test_envs.py::test_every_imported_package_is_declared_and_python_is_open_ended"),
    (r"(\.venv/bin/)?pip install -q -e '\.\[test\]'$", "test:tests/test_envs.py::test_env_pins_agree_with_pyproject"),
    (r"\(command -v chromium\b.*\)$", "test:tests/test_workflow.py::test_report_in_headless_chromium"),
    (r"(\.venv/bin/)?python -m pytest\b", "skip:runs the test suite itself"),
    (r"(\.venv/bin/)?python -m bench sampling\b", "test:tests/test_bench.py::test_bench_sampling_tiny"),
    (r"(\.venv/bin/)?python -m bench recipe\b", "test:tests/test_bench.py::test_bench_recipe_tiny"),
    (r"(\.venv/bin/)?python -m bench threads\b", "test:tests/test_bench.py::test_thread_capping"),
    (r"(\.venv/bin/)?python -m bench dag\b", "test:tests/test_bench.py::test_dag_runs_a_workflow_from_nothing_and_judges_the_bar"),
    (r"(\.venv/bin/)?python -m bench train\b", "test:tests/test_bench.py::test_bench_train_tiny"),
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
