"""The Snakemake workflow as a whole: config validation, the dry-run DAG, and a smoke run."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from fundiff import paths, prompts, recipes

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SMOKE = REPO / "config" / "smoke.yaml"
DEFAULT = REPO / "config" / "config.yaml"
LAPTOP = REPO / "config" / "laptop.yaml"


def snakemake(workdir: Path, *args: str, configfile: Path = SMOKE, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(configfile), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def dry_run_outputs(workdir: Path, configfile: Path, *args: str) -> set[str]:
    proc = snakemake(workdir, "-n", *args, configfile=configfile)
    text = proc.stdout + proc.stderr
    files = set()
    for match in re.finditer(r"^\s+output: (.*)$", text, flags=re.M):
        files.update(f.strip() for f in match.group(1).split(","))
    return files


def write_config(tmp_path: Path, edit) -> Path:
    cfg = yaml.safe_load(SMOKE.read_text())
    edit(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_every_rule_declares_a_log_and_a_benchmark():
    """The guide's rule contract: every job writes a log and a benchmark file (its wall time,
    memory and CPU time), so a slow DAG can be taken apart job by job."""
    rules = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"(?m)^(?=rule )", path.read_text())[1:]:
            rules[block.split(":")[0].split()[1]] = block
    assert len(rules) >= 30, sorted(rules)
    missing = {name: [d for d in ("log:", "benchmark:") if f"\n    {d}" not in block] for name, block in rules.items()}
    assert {n: m for n, m in missing.items() if m} == {}
    for name, block in rules.items():
        log = re.search(r'log:\n\s+"logs/([^"]+)\.log"', block).group(1)
        assert re.search(rf'benchmark:\n\s+paths\.BENCHMARKS\["{name}"\]', block), name  # one home for benchmark paths
        bench = re.fullmatch(r"benchmarks/(.+)\.tsv", paths.BENCHMARKS[name]).group(1)
        assert bench == log, (name, log, bench)
    assert set(paths.BENCHMARKS) == set(rules)


def test_lint_and_snakefmt_are_clean(tmp_path):
    """`snakemake --lint` finds nothing (on the smoke and the default config) and snakefmt would
    change no Snakemake file."""
    for configfile in (SMOKE, DEFAULT):
        proc = snakemake(tmp_path, "--lint", configfile=configfile, check=False)
        assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    snakefmt = Path(sys.executable).with_name("snakefmt")
    proc = subprocess.run([str(snakefmt), "--check", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_report_reads_the_benchmark_file_of_every_job(tmp_path):
    """paths.benchmark_files lists the benchmark file of every job of the smoke DAG but the
    report's own: the report takes its timings from its inputs, not from the benchmarks/ folder."""
    proc = snakemake(tmp_path, "-n")
    planned = set(re.findall(r"^\s+benchmark: (\S+)$", proc.stdout, flags=re.M))
    cfg = yaml.safe_load(SMOKE.read_text())
    expected = set(paths.benchmark_files(cfg, cfg["part_a"]["model"]))
    assert planned - expected == {paths.BENCHMARKS["render_report"]}
    assert expected <= planned


def test_default_dag_has_every_output(tmp_path):
    cfg = yaml.safe_load(DEFAULT.read_text())
    outputs = dry_run_outputs(tmp_path, DEFAULT)
    expected = set(paths.part_b_targets(cfg)) | {"results/report/index.html"}
    for model in recipes.ALL_MODELS:
        epochs = recipes.model_settings(cfg, model)["epochs"]
        expected |= {f"results/part_b/{model}/checkpoints/epoch_{e:03d}.pt" for e in range(epochs + 1)}
    assert expected <= outputs, sorted(expected - outputs)[:10]
    # the course recipes: 2024 (5 + 20 + 20 epochs, sample epochs 1..20) and 2025 (10 epochs, flow)
    for path in [
        "results/part_b/ddpm/class_cond/epoch_020/samples_cfg10.png",
        "results/part_b/ddpm/time_cond/epoch_015/samples.png",
        "results/part_b/single_step/epoch_005/ood.png",
        "results/part_b/pure_noise/epoch_005/denoised.png",
        "results/part_b/flow/class_cond/epoch_010/samples_cfg5.png",
        "results/part_b/flow/time_cond/epoch_001/samples.png",
        "results/part_b/flow/class_cond_constant_lr/checkpoints/epoch_010.pt",
        "results/part_b/step_comparison.png",
    ]:
        assert path in outputs, path
    assert not any("epoch_021" in o or "flow/time_cond/checkpoints/epoch_011" in o for o in outputs)


def test_laptop_dag_schedules_the_longest_training_chain_first(tmp_path, monkeypatch):
    """Priorities in the dry run: every chain's init_model outranks its first epoch, each epoch the
    next, the 20-epoch time-conditioned DDPM (the longest chain) starts first, and the step
    comparison (the longest sampling job) outranks every training job."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    text = snakemake(tmp_path / "w", "-n", configfile=LAPTOP).stdout
    prio = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        if not rule:
            continue
        wc = dict(re.findall(r"(\w+)=([^,\s]+)", (re.search(r"wildcards: (.*)", block) or [None, ""])[1]))
        p = re.search(r"priority: (\d+)", block)
        prio[(rule.group(1), wc.get("model"), int(wc.get("epoch", 0)))] = int(p.group(1)) if p else 0
    chains = {}
    for (rule, model, epoch), p in prio.items():
        if rule in ("init_model", "train_epoch"):
            chains.setdefault(model, []).append((epoch, p))
    assert len(chains) == 7
    for model, steps in chains.items():
        ranks = [p for _, p in sorted(steps)]
        assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) > 1 and ranks[-1] > 0, (model, ranks)
    firsts = {m: max(p for _, p in steps) for m, steps in chains.items()}
    assert max(firsts, key=firsts.get) == "ddpm/time_cond", firsts
    assert prio[("step_comparison", None, 0)] > max(firsts.values())
    assert prio[("render_report", None, 0)] == 0
    assert prio[("download_mnist", None, 0)] > max(prio[k] for k in prio if k[0] != "download_mnist")  # the root of every chain


def test_target_rules_build_one_part(tmp_path):
    """`snakemake part_b` (part_a, evaluation, report) schedules that part's files and nothing of
    the parts it does not need; `--until` stops at a rule."""
    cfg = yaml.safe_load(SMOKE.read_text())
    part_b = dry_run_outputs(tmp_path / "b", SMOKE, "part_b")
    assert set(paths.part_b_targets(cfg)) <= part_b and not any(o.startswith(("results/part_a/", "results/evaluation/", "results/report/")) for o in part_b)
    part_a = dry_run_outputs(tmp_path / "a", SMOKE, "part_a")
    assert set(paths.part_a_targets(cfg, "tiny")) <= part_a and not any(o.startswith("results/part_b/") for o in part_a)
    evaluation = dry_run_outputs(tmp_path / "e", SMOKE, "evaluation")
    assert set(paths.evaluation_targets(cfg)) <= evaluation and "results/report/index.html" not in evaluation
    assert {"results/report/index.html", "results/quality_gates.csv"} <= dry_run_outputs(tmp_path / "r", SMOKE, "report")
    until = snakemake(tmp_path / "u", "-n", "--until", "init_model").stdout
    assert set(re.findall(r"^(?:local)?rule (\w+):", until, flags=re.M)) == {"init_model"}


def key_paths(tree, prefix=""):
    """Every key path of a nested config ("part_b.ddpm.class_cond.lr", ...)."""
    if not isinstance(tree, dict):
        return set()
    return {f"{prefix}{k}" for k in tree} | {p for k, v in tree.items() for p in key_paths(v, f"{prefix}{k}.")}


def test_laptop_dag_contains_every_output_of_the_default_dag(tmp_path, monkeypatch):
    """config/laptop.yaml runs the same experiments as the course recipe: its dry-run DAG holds
    every file of the default DAG (same epochs shown, same gammas, same Part A inputs), and
    nothing else differs but sizes (widths, images per epoch, sample counts and steps)."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no DeepFloyd weights: auto -> the MNIST model, as on a laptop
    default = dry_run_outputs(tmp_path / "default", DEFAULT)
    laptop = dry_run_outputs(tmp_path / "laptop", LAPTOP)
    missing = sorted(default - laptop)
    assert not missing, missing[:20]
    assert "results/quality_gates.csv" in laptop and "results/part_b/ddpm/class_cond/epoch_020/samples_cfg10.png" in laptop
    cfg, lap = yaml.safe_load(DEFAULT.read_text()), yaml.safe_load(LAPTOP.read_text())
    assert lap["part_a"]["model"] == "mnist"
    # sizes only: the course's experiment lists are unchanged
    for path in ("part_b.editions", "part_b.noise_sigmas", "part_b.step_comparison", "part_a.forward_t", "part_a.sdedit_i_starts", "part_a.cfg_sweep", "part_a.mnist"):
        a, b = cfg, lap
        for k in path.split("."):
            a, b = a[k], b[k]
        assert a == b, path
    assert key_paths(cfg) - key_paths(lap) == set()


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda c: c["part_b"]["ddpm"]["class_cond"].update(guidanse=3), ["guidanse", "not allowed"]),
        (lambda c: c.update(seeed=3), ["seeed", "Additional properties"]),
        (lambda c: c.update(device="gpu"), ["device", "'gpu' is not one of"]),
        (lambda c: c["part_b"]["flow"]["time_cond"].update(hidden="64"), ["hidden", "is not of type 'integer'"]),
        (lambda c: c["part_b"]["ddpm"]["time_cond"].update(lr=-1), ["lr"]),
        (lambda c: c["part_b"].update(noise_sigmas=[]), ["noise_sigmas", "should be non-empty"]),
        (lambda c: c["part_b"].update(editions=["ddpm", "score"]), ["editions", "'score' is not one of"]),
        (lambda c: c["part_b"]["flow"]["class_cond"].update(show_epochs=[3]), ["part_b.flow.class_cond.show_epochs", "[3]"]),
        (lambda c: c["part_b"]["single_step"].update(show_epochs=[1, 9]), ["part_b.single_step.show_epochs", "[9]", "epochs = 2"]),
        (lambda c: c["part_b"]["ddpm"].update(beta_start=0.5, beta_end=0.1), ["beta_start"]),
        # Part A, checked before anything runs
        (lambda c: c["part_a"].update(forward_t=[250, 1000]), ["forward_t", "1000 is greater than the maximum of 999"]),
        (lambda c: c["part_b"].update(noise_sigmas=[0.5, -0.2]), ["noise_sigmas", "-0.2 is less than the minimum of 0"]),
        (lambda c: c["part_a"].update(cfg_scale=-1), ["cfg_scale", "-1 is less than the minimum of 0"]),
        (lambda c: c["part_a"].update(model="imagen"), ["model", "'imagen' is not one of"]),
        (lambda c: c["part_a"].update(iterative_i_start=40), ["part_a.iterative_i_start has [40]", "positions 0..5"]),
        (lambda c: c["part_a"]["mnist"]["sample_prompts"].append("a cat"), ["'a cat'", "digit prompts"]),
        (lambda c: c["part_a"]["deepfloyd"]["inpaint"].append({"image": "test", "rect": [0, 10, 0, 65]}), ["rect", "65 is greater than the maximum of 64"]),
    ],
)
def test_bad_config_fails_at_dag_build_naming_the_key(tmp_path, edit, words):
    proc = snakemake(tmp_path, "-n", configfile=write_config(tmp_path, edit), check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in text, f"{word!r} missing from:\n{text[-2000:]}"
    assert not (tmp_path / "results").exists()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_smoke_run_end_to_end(smoke_dir):
    tmp_path = smoke_dir
    cfg = yaml.safe_load(SMOKE.read_text())
    targets = paths.part_b_targets(cfg) + ["results/report/index.html"]
    for rel in targets:
        path = tmp_path / rel
        assert path.is_file() and path.stat().st_size > 0, rel
        if path.suffix in (".png", ".gif"):
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:
                assert im.width > 20 and im.height > 20
                if path.suffix == ".gif":
                    assert im.n_frames == cfg["part_b"]["gif_frames"]
        elif path.suffix == ".csv":
            assert len(pd.read_csv(path)) > 0
    # Part A on the tiny IF models (DeepFloyd's code path): every file, stage II at 256 px, and
    # CFG, anagrams and hybrids at one batched UNet call per denoising step
    assert cfg["part_a"]["model"] == "tiny"
    for rel in paths.part_a_targets(cfg, "tiny"):
        assert (tmp_path / rel).is_file() and (tmp_path / rel).stat().st_size > 0, rel
    import torch

    record = torch.load(tmp_path / "results/part_a/samples_cfg7.pt", weights_only=True)  # 1.6: num_samples of the generic prompt (course)
    n = cfg["part_a"]["num_samples"]
    assert record["samples"].shape == (n, 3, 64, 64) and record["upsampled"].shape == (n, 3, 256, 256)
    assert record["prompts"] == [cfg["part_a"]["deepfloyd"]["generic_prompt"]] * n
    extra = torch.load(tmp_path / "results/part_a/samples_prompts_cfg7.pt", weights_only=True)  # the other prompts: an extra figure
    assert extra["prompts"] == cfg["part_a"]["deepfloyd"]["sample_prompts"]
    for log in ["samples_cfg7.log", "anagram/00.log", "hybrid/00.log", "inpaint/00.log"]:
        text = (tmp_path / "logs/part_a" / log).read_text()
        assert "(1.00 calls per step;" in text, log
    embeds = torch.load(tmp_path / "resources/deepfloyd/tiny_prompt_embeds.pt", weights_only=True)
    assert set(embeds) == {"", *prompts.deepfloyd_prompts(cfg)}
    metrics = pd.read_csv(tmp_path / "results/part_a/denoise_metrics.csv")
    assert set(metrics.estimate) == {"noisy", "gaussian blur", "one-step"} and metrics.psnr_db.notna().all()

    # measured sample quality: the classifier passed its floor, one metrics row per sample set
    from fundiff import evaluate

    for rel in paths.evaluation_targets(cfg):
        assert (tmp_path / rel).is_file(), rel
    clf = pd.read_csv(tmp_path / "results/evaluation/classifier.csv")
    assert len(clf) == 1 and clf.test_accuracy[0] >= cfg["evaluation"]["min_test_accuracy"]
    for model in recipes.generative_models(cfg):
        class_model = "guidance" in recipes.model_settings(cfg, model)
        for rel in paths.metrics_files(cfg, model):
            row = pd.read_csv(tmp_path / rel)
            assert list(row.columns) == evaluate.COLUMNS and len(row) == 1 and row.model[0] == model
            assert row[[f"frac_{k}" for k in range(10)]].sum(axis=1)[0] == pytest.approx(1)
            assert 0 <= row.class_entropy_bits[0] <= 3.33 and row.frechet_distance[0] >= -1e-6
            assert (0 <= row.accuracy[0] <= 1) if class_model else row.accuracy.isna().all()
    # quality gates: one row per gate, judged from the files above, shown at the top of the report
    from fundiff import gates

    table = pd.read_csv(tmp_path / "results/quality_gates.csv")
    assert list(table.columns) == gates.COLUMNS and set(table.status) <= {"PASS", "FAIL", "reported"}
    gens = recipes.generative_models(cfg)
    # test MSE; per time model confident fraction, Frechet ratio, entropy, confidence; per class model accuracy, confident
    # fraction, worst digit, Frechet ratio; figures (Part A runs on the tiny models: no Part A gates)
    assert len(table) == 1 + 4 * len(gens) + 1 and set(table.model) == {"single_step", "all", *gens}
    ref = pd.read_csv(tmp_path / "results/evaluation/reference_metrics.csv").iloc[0]
    sure = table[table.gate == "read with p >= 0.9"]
    assert (sure.real == ref.confident_fraction).all() and 0 <= ref.confident_fraction <= 1
    mse = table[table.gate == "test MSE"].iloc[0]
    tm = pd.read_csv(tmp_path / f"results/part_b/single_step/epoch_{max(cfg['part_b']['single_step']['show_epochs']):03d}/test_metrics.csv")
    assert mse.value == pytest.approx(tm[(tm.image == "denoised") & (tm.sigma == 0.5)].mse.iloc[0]) and mse.bar == 0.010
    figs = table[table.gate == "figures readable and not blank"].iloc[0]
    assert figs.status == "PASS" and figs.value == len(paths.figure_files(cfg, "tiny"))
    html = (tmp_path / "results/report/index.html").read_text()
    assert "Quality gates: " + gates.summary(table) in html
    # no temporary leftovers under any final name
    assert not list((tmp_path / "results").rglob(".*.tmp*"))
    # the losses CSV covers every epoch; the test metrics cover every sigma for both images
    losses = pd.read_csv(tmp_path / "results/part_b/ddpm/time_cond/losses.csv")
    assert losses.epoch.tolist() == [1, 2]
    metrics = pd.read_csv(tmp_path / "results/part_b/single_step/epoch_002/test_metrics.csv")
    assert len(metrics) == 2 * len(cfg["part_b"]["noise_sigmas"])
    assert (metrics.num_images == cfg["data"]["test_limit"]).all()
    # the report references only files inside its folder, all present
    html = (tmp_path / "results/report/index.html").read_text()
    srcs = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert srcs and all(not s.startswith(("/", "http")) for s in srcs)
    for src in srcs:
        assert (tmp_path / "results/report" / src).is_file(), src
    assert str(tmp_path) not in html
    assert "Model used for Part A: tiny, randomly initialised models" in html and 'id="a0"' in html
    assert "weights DeepFloyd/IF-I-XL-v1.0 @ " in html and "(tiny)" in html

    # nothing left to do
    assert "Nothing to be done" in (p := snakemake(tmp_path, "-n")).stdout + p.stderr

    # Snakemake's own report of the outputs flagged with report()
    import zipfile

    snakemake(tmp_path, "--report", str(tmp_path / "snakemake_report.zip"))
    with zipfile.ZipFile(tmp_path / "snakemake_report.zip") as archive:
        names = archive.namelist()
    assert any(n.endswith("report.html") for n in names) and sum(n.endswith((".png", ".gif")) for n in names) >= 10


@pytest.mark.slow
def test_report_in_headless_chromium(smoke_dir):
    """Every image loads, every equation renders, nothing leaves file://, no console error."""
    from .browser import inspect_page

    found = inspect_page(smoke_dir / "results/report/index.html", REPO / "test-artifacts" / "report_smoke.png")
    assert found["images"], "the report has no images"
    broken = [src for src, complete, width in found["images"] if not complete or width == 0]
    assert not broken, broken
    assert found["equations"] >= 5
    assert found["unrendered_equations"] == 0
    assert found["errors"] == [], found["errors"]
    external = [u for u in found["requests"] if not u.startswith(("file://", "data:"))]
    assert not external, external
    assert (REPO / "test-artifacts" / "report_smoke.png").stat().st_size > 10_000


@pytest.mark.slow
def test_smoke_reruns(smoke_dir):
    tmp_path = smoke_dir
    # editing a template re-renders the report and nothing else
    work_templates = tmp_path / "templates_copy"
    shutil.copytree(REPO / "report" / "templates", work_templates, dirs_exist_ok=True)
    # an edit, not a touch: Snakemake skips the mtime trigger when a small input's checksum is unchanged
    style = REPO / "report" / "templates" / "style.css"
    style.write_text(style.read_text() + "\n/* edited by test_smoke_reruns */\n")
    try:
        planned = snakemake(tmp_path, "-n")
        jobs = re.findall(r"^(?:local)?rule (\w+):", planned.stdout, flags=re.M)
        assert set(jobs) == {"render_report", "all"}, jobs
    finally:
        shutil.copy2(work_templates / "style.css", style)

    # rerunning jobs gives identical files (CPU): rebuild one checkpoint and one sample set
    rebuilt = ["results/part_b/flow/class_cond_constant_lr/checkpoints/epoch_002.pt", "results/part_b/flow/class_cond_constant_lr/epoch_002/samples_cfg5.pt", "results/part_b/flow/class_cond_constant_lr/epoch_002/samples_cfg5.png"]
    before = {r: _sha(tmp_path / r) for r in rebuilt}
    snakemake(tmp_path, "--cores", "2", "--max-threads", "1", "--forcerun", "train_epoch", "sample_model", "--until", "sample_model", *rebuilt[1:])
    assert {r: _sha(tmp_path / r) for r in rebuilt} == before


@pytest.mark.slow
def test_changing_cfg_scale_reruns_only_the_jobs_that_read_it(smoke_dir, tmp_path):
    """Each rule's params carry only the config keys it reads: after a finished run, a new
    part_a.cfg_scale schedules the Part A jobs that sample with it (new 1.6 files, SDEdit, text
    edits, inpainting, illusions) and the gates and report, nothing else of Part A or Part B.
    Compared with a dry run of the unchanged config (an earlier test may have left jobs due)."""
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["part_a"]["cfg_scale"] = max(cfg["part_a"]["cfg_sweep"] + [cfg["part_a"]["cfg_scale"]]) + 1
    path = tmp_path / "cfg_scale.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # params compare as text: keep the keys' order

    def planned(*args, **kw):
        out = snakemake(smoke_dir, "-n", *args, **kw).stdout
        return set(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))

    before, after = planned(), planned(configfile=path)
    users = {"part_a_sample", "part_a_sdedit", "part_a_text_edit", "part_a_inpaint", "part_a_illusion", "quality_gates", "render_report", "all"}
    assert after - before == users - before, sorted(after - before)
    assert not {"part_a_noising", "part_a_iterative", "part_a_setup", "train_epoch", "sample_model"} & (after - before)


@pytest.mark.slow
def test_part_a_on_the_mnist_model(smoke_dir, tmp_path):
    """The smoke run uses the tiny IF models; `mnist` runs the same Part A rules and file names on
    Part B's class-conditioned DDPM, and the report shows its banner."""
    work = tmp_path / "work"
    shutil.copytree(smoke_dir, work, symlinks=True, ignore=shutil.ignore_patterns("snakemake_report.zip", "templates_copy"))
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["part_a"]["model"] = "mnist"
    path = tmp_path / "mnist.yaml"
    path.write_text(yaml.safe_dump(cfg))
    targets = paths.part_a_targets(cfg, "mnist") + ["results/report/index.html"]
    planned = snakemake(work, "-n", *targets, configfile=path)
    jobs = set(re.findall(r"^(?:local)?rule (\w+):", planned.stdout, flags=re.M))
    assert jobs and all(j.startswith("part_a_") or j in ("render_report", "quality_gates") for j in jobs), jobs  # Part B is reused, not retrained
    assert "Part A runs on the mnist model (set explicitly in the config)" in planned.stdout + planned.stderr
    snakemake(work, "--cores", "2", *targets, configfile=path)
    import torch

    record = torch.load(work / "results/part_a/samples_cfg7.pt", weights_only=True)
    assert record["samples"].shape == (len(cfg["part_a"]["mnist"]["sample_prompts"]), 1, 28, 28) and "upsampled" not in record
    noise = torch.load(work / "results/part_a/samples.pt", weights_only=True)  # 1.5: a digit drawn for each sample
    assert cfg["part_a"]["mnist"]["noise_sample_prompts"] == "drawn_digits" and len(noise["prompts"]) == cfg["part_a"]["num_samples"]
    assert all(prompts.prompt_to_class(q) is not None for q in noise["prompts"])
    # the evaluation classifier's reading of the 1.5 samples and every illusion view
    readings = pd.read_csv(work / "results/part_a/readings.csv")
    m = cfg["part_a"]["mnist"]
    assert len(readings) == cfg["part_a"]["num_samples"] + 2 * len(m["anagrams"]) + 2 * len(m["hybrids"])
    assert readings[readings.kind == "sample"].prompt.tolist() == noise["prompts"]
    hybrid = readings[readings.kind == "hybrid"]
    assert hybrid.view.tolist()[:2] == ["up close", "from afar"] and hybrid.intended.tolist()[:2] == [1, 0]  # high digit close, low afar
    anagram = readings[readings.kind == "anagram"]
    assert m["anagram_view"] == "rotate"  # smoke.yaml's MNIST section: the half turn
    assert anagram.view.tolist()[:2] == ["upright", "rotated 180°"] and anagram.intended.tolist()[:2] == [6, 9]
    assert ((readings.p_predicted > 0) & (readings.p_predicted <= 1)).all()
    html = (work / "results/report/index.html").read_text()
    assert "What the evaluation classifier reads in the 1.5 samples and the illusions" in html
    gates_table = pd.read_csv(work / "results/quality_gates.csv")
    assert {"1.5 samples read with p >= 0.9", "hybrids seen as intended both ways", "anagrams read as intended both ways"} <= set(gates_table.gate)
    assert "Model used for Part A: the class-conditioned MNIST DDPM" in html
    assert "tiny, randomly initialised" not in html
