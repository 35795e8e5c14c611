"""Config files read strictly (fundiff.configfile): every slip PyYAML lets through, or refuses
without naming the line, stops the DAG build with the file, the line and the key."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

from fundiff import configfile
from fundiff.configfile import ConfigFileError

from .test_workflow import REPO, SMOKE, SNAKEMAKE

SCHEMA = REPO / "config" / "schema.yaml"


def _file(tmp_path, text: str, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    "text, words",
    [
        ("seed: 1\npart_b:\n  ddpm:\n    lr: 1.0e-3\n    beta_end: 0.02\n    lr: 1.0e-2\n", "part_b.ddpm.lr is given twice (lines 4 and 6)"),
        ("part_a:\n  blur: {kernel_size: 5, kernel_size: 7}\n", "part_a.blur.kernel_size is given twice (lines 2 and 2)"),
        ("inpaint:\n  - {image: a, rect: [0, 1, 0, 1]}\n  - {image: b, image: c}\n", r"inpaint[1].image is given twice (lines 3 and 3)"),
        ('{"seed": 1, "seed": 2}', "key 'seed' is given twice in one object"),
        ("part_b:\n\tlr: 1\n", "line 2: a tab in 'lr: 1'; YAML allows only spaces"),
        ("part_b:\n  lr:\t1.0e-3\n", r"line 2: a tab in 'lr:\t1.0e-3'"),
        ("", "is empty (or only comments)"),
        ("# seed: 1\n", "is empty (or only comments)"),
        ("- seed: 1\n- part_b: {}\n", "holds a list at the top level: it must be a mapping"),
        ("seed\n", "holds a str at the top level"),
        ("part_a:\n  yes: 1\n", "line 2: key 'yes' under part_a is read as bool, not text"),
        ("seed: !!python/name:os.system\n", "line 1, column 7: could not determine a constructor"),
        ("seed: 1\n---\nseed: 2\n", "line 2, column 1: but found another document"),
        ("part_a:\n  generic_prompt: a photo: sharp\n", "line 2, column 26: mapping values are not allowed here"),
    ],
)
def test_slips_are_refused_naming_file_line_and_key(tmp_path, text, words):
    path = _file(tmp_path, text)
    with pytest.raises(ConfigFileError) as err:
        configfile.load(path)
    assert str(err.value).startswith(f"config file {path}") and words in str(err.value), str(err.value)


def test_exponent_floats_bom_and_crlf_are_read_as_meant(tmp_path):
    text = "seed: 3\npart_b:\n  lr: 1e-4\n  xs: [1E5, 1.0e4, .5e-3, -2e+2, 1.0e-4, 0.5]\n  quoted: '1e-4'\n"
    plain = configfile.load(_file(tmp_path, text))
    assert plain == {"seed": 3, "part_b": {"lr": 1e-4, "xs": [1e5, 1e4, 5e-4, -200.0, 1e-4, 0.5], "quoted": "1e-4"}}
    assert configfile.load(_file(tmp_path, "\ufeff" + text.replace("\n", "\r\n"), "bom.yaml")) == plain


def test_check_puts_the_floats_into_snakemakes_config(tmp_path):
    """Snakemake (PyYAML) reads the smoke config with 1e-3 for 1.0e-3 as strings, so the schema
    refuses lr; after check() the config is the one written with 1.0e-3, and the schema passes."""
    text = SMOKE.read_text()
    assert "lr: 1.0e-3" in text
    path = _file(tmp_path, text.replace("lr: 1.0e-3", "lr: 1e-3"))
    as_snakemake_reads = yaml.safe_load(path.read_text())
    assert as_snakemake_reads["part_b"]["single_step"]["lr"] == "1e-3"
    with pytest.raises(Exception, match="'1e-3' is not of type 'number'"):
        validate(copy.deepcopy(as_snakemake_reads), str(SCHEMA))  # (validate also fills in defaults)
    configfile.check(as_snakemake_reads, [path])
    assert as_snakemake_reads == yaml.safe_load(text)
    validate(as_snakemake_reads, str(SCHEMA))
    # a value set later (another file, --config) keeps its own number
    cfg = {"part_b": {"lr": "2e-3", "other": "1e-3"}}
    configfile.check(cfg, [_file(tmp_path, "part_b:\n  lr: 1e-4\n  other: '1e-3'\n", "first.yaml")])
    assert cfg == {"part_b": {"lr": 2e-3, "other": "1e-3"}}  # a quoted string stays a string (and the schema says so)


def test_shipped_config_files_pass_the_strict_reading():
    for path in sorted((REPO / "config").glob("*.yaml")) + sorted((REPO / "profiles").glob("*/config.yaml")):
        as_snakemake_reads = yaml.safe_load(path.read_text())
        configfile.check(as_snakemake_reads, [path])
        assert as_snakemake_reads == configfile.load(path), path


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda c: c["part_a"].update(forward_t=[250, 1000]), ["1000 is greater than the maximum of 999", "['part_a']['forward_t'][1]"]),
        (lambda c: c["part_a"].update(sdedit_i_starts=[1, -3]), ["-3 is less than the minimum of 0", "['part_a']['sdedit_i_starts'][1]"]),
        (lambda c: c["part_a"].update(cfg_sweep=[0.0, 101.0]), ["101.0 is greater than the maximum of 100", "['part_a']['cfg_sweep'][1]"]),
        (lambda c: c["part_b"]["flow"]["time_cond"].update(show_epochs=[0]), ["0 is less than the minimum of 1", "['show_epochs'][0]"]),
        (lambda c: c["part_a"]["mnist"]["inpaint"].append({"image": "test", "rect": [0, 29, 0, 28]}), ["29 is greater than the maximum of 28", "['rect'][1]"]),
    ],
)
def test_out_of_range_list_entries_name_the_entry(edit, words):
    cfg = yaml.safe_load(SMOKE.read_text())
    edit(cfg)
    with pytest.raises(Exception) as err:
        validate(cfg, str(SCHEMA))
    for word in words:
        assert word in str(err.value), str(err.value)


# ---------------------------------------------------------------- through Snakemake's command line (a few seconds each)


def _copy_workflow(tmp_path):
    dest = tmp_path / "workflow"
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(".git", ".venv", ".snakemake", "data", "logs", "results", "resources", "__pycache__", "*.egg-info"))
    return dest


def _dry_run(snakefile, workdir, configfile_, *targets):
    cmd = [SNAKEMAKE, "-s", str(snakefile), "--directory", str(workdir), "--configfile", str(configfile_), "-n", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("slip", ["duplicate key in --configfile", "tab in --configfile", "tab in config/config.yaml"])
def test_config_file_slips_stop_the_dag_build(tmp_path, slip):
    text = SMOKE.read_text()
    assert "\n  num_test_digits:" in text
    snakefile, given = REPO / "Snakefile", tmp_path / "bad.yaml"
    if slip == "duplicate key in --configfile":
        given.write_text(text.replace("\n  num_test_digits:", "\n  num_test_digits: 9\n  num_test_digits:", 1))
        words = ["Invalid config: config file", "part_b.num_test_digits is given twice", "Delete one of them"]
    elif slip == "tab in --configfile":
        # Snakemake reads --configfile files before any workflow code runs: its own refusal, which names no line
        given.write_text(text.replace("\n  num_test_digits:", "\n\tnum_test_digits:", 1))
        words = ["Config file is not valid JSON or YAML", "tab indentation"]
    else:
        workflow = _copy_workflow(tmp_path)
        default = workflow / "config" / "config.yaml"
        default.write_text(default.read_text().replace("\n  num_test_digits:", "\n\tnum_test_digits:", 1))
        snakefile, given = workflow / "Snakefile", SMOKE
        words = ["Invalid config: config file", "config/config.yaml, line", "a tab in 'num_test_digits:", "Replace the tab by spaces"]
    rc, out = _dry_run(snakefile, tmp_path / "run", given)
    assert rc != 0
    for word in words:
        assert word in out, f"{word!r} missing from:\n{out[-2000:]}"
    assert not (tmp_path / "run" / "results").exists()


def test_bom_crlf_and_exponent_floats_build_the_dag(tmp_path):
    text = SMOKE.read_text().replace("lr: 1.0e-3", "lr: 1e-3")
    path = tmp_path / "windows.yaml"
    path.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"))
    rc, out = _dry_run(REPO / "Snakefile", tmp_path / "run", path, "data/mnist/mnist_manifest.json")
    assert rc == 0 and "download_mnist" in out, out[-3000:]


# ---------------------------------------------------------------- command-line overrides and short messages


def test_text_values_are_read_by_the_schemas_types():
    """Snakemake hands the values inside a --config dictionary over as text; coerce_text reads them
    by the schema (through $ref and allOf), and leaves text where the schema wants text."""
    schema = configfile.load_schema(SCHEMA)
    cfg = {"seed": "7", "part_b": {"ddpm": {"class_cond": {"guidance": "7.0", "epochs": "0", "lr": "1e-4", "ema_warmup": "true", "lr_decay": "null",
                                                           "show_epochs": ["1", "2"], "guidance_sweep": ["0", "2.5"]}}},
           "part_a": {"mnist": {"sample_prompts": ["1", "a 2"]}, "model": "mnist"}, "data": {"root": "123", "train_limit": "abc"}}
    configfile.coerce_text(cfg, schema)
    cc = cfg["part_b"]["ddpm"]["class_cond"]
    assert cc == {"guidance": 7.0, "epochs": 0, "lr": 1e-4, "ema_warmup": True, "lr_decay": None, "show_epochs": [1, 2], "guidance_sweep": [0, 2.5]}
    assert cfg["seed"] == 7 and cfg["part_a"]["mnist"]["sample_prompts"] == ["1", "a 2"] and cfg["data"]["root"] == "123"
    assert cfg["data"]["train_limit"] == "abc"  # not a number: left for the schema to refuse
    # with the command line's values given, only they are read again: text quoted in a file stays text
    cfg = {"seed": "7", "data": {"train_limit": "256", "test_limit": "64"}}
    configfile.coerce_text(cfg, schema, given={"data": {"train_limit": "256"}})
    assert cfg == {"seed": "7", "data": {"train_limit": 256, "test_limit": "64"}}


def _cli(tmp_path, *args, configfile_=SMOKE):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path / "run"), "--configfile", str(configfile_), "-n", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_nested_overrides_with_numbers_and_booleans_work(tmp_path):
    rc, out = _cli(tmp_path, "part_b", "--config", "part_b={ddpm: {class_cond: {guidance: 7.0, ema_warmup: true}}, flow: {time_cond: {epochs: 3}}}")
    assert rc == 0, out[-3000:]
    assert "results/part_b/ddpm/class_cond/epoch_002/samples_cfg7.png" in out  # the new gamma reached the targets
    assert "epoch_003.pt" in out and "flow/time_cond/checkpoints/epoch_003.pt" in out


@pytest.mark.parametrize(
    "override, words",
    [
        ("part_b={ddpm: {time_cond: {epochs: 0}}}", ["part_b.ddpm.time_cond.epochs is 0: 0 is less than the minimum of 1", "must be at least 1 and at most 999"]),
        ("part_b={ddpm: {class_cond: {guidance: 120}}}", ["part_b.ddpm.class_cond.guidance is 120", "must be at least 0 and at most 100"]),
        ("seeed=3", ["unknown key 'seeed' (did you mean 'seed'?)", "The keys allowed under the top level are: data, device"]),
        ("part_b={ddpm: {class_cond: {guidanse: 7.0}}}", ["unknown key 'part_b.ddpm.class_cond.guidanse' (did you mean 'guidance'?)"]),
        ("part_b={ddpm: {class_cond: {guidance: strong}}}", ["part_b.ddpm.class_cond.guidance is 'strong': 'strong' is not of type 'number'"]),
    ],
)
def test_override_errors_are_short_and_name_the_fix(tmp_path, override, words):
    rc, out = _cli(tmp_path, "--config", override)
    assert rc != 0
    for word in words:
        assert word in out, f"{word!r} missing from:\n{out[-2000:]}"
    assert len(out.splitlines()) < 15 and "$defs" not in out and "On instance" not in out, out  # no dump of schema and config


@pytest.mark.parametrize(
    "text, snakemakes, ours",
    [
        ("seed: 1\npart_b:\n\tlr: 1\n", "Config file is not valid JSON or YAML", "line 3: a tab in 'lr: 1'"),
        ("seed: 1\npart_b: [1, 2\nx: 3\n", "Config file is not valid JSON or YAML", "line 3, column 2: expected ',' or ']'"),
        ("", "Config file must be given as JSON or YAML with keys at top level", "is empty (or only comments)"),
        ("- seed: 1\n", "Config file must be given as JSON or YAML with keys at top level", "holds a list at the top level"),
    ],
)
def test_configfile_slips_snakemake_reads_first(tmp_path, text, snakemakes, ours):
    """Snakemake parses --configfile files before any workflow code runs: its one line, exactly as
    config/README.md quotes it; `python -m fundiff.configfile FILE` then names the file and line."""
    path = _file(tmp_path, text, "mine.yaml")
    rc, out = _cli(tmp_path, configfile_=path)
    assert rc != 0 and snakemakes in out, out[-2000:]
    assert snakemakes in (REPO / "config" / "README.md").read_text()
    proc = subprocess.run([sys.executable, "-m", "fundiff.configfile", str(path)], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 1 and proc.stdout.startswith(f"config file {path}") and ours in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", ["under a file", "is a file", "not writable"])
def test_unusable_data_root_is_named(tmp_path, case):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("x")
    locked = tmp_path / "run" / "locked"
    locked.mkdir()
    root, words = {"under a file": ("notes.txt/mnist", "data.root = 'notes.txt/mnist' lies under"),
                   "is a file": ("notes.txt", "data.root = 'notes.txt' is a regular file, not a folder"),
                   "not writable": ("locked/mnist", "is not writable by this user")}[case]
    if case == "not writable":
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        locked.chmod(0o500)
    rc, out = _cli(tmp_path, "--config", f"data={{root: {root}}}")
    assert rc != 0 and words in out and "Traceback" not in out, out[-2000:]
    assert len(out.splitlines()) < 10, out
