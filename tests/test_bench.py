"""The benchmarks (python -m bench, the top-level bench/ folder) run end to end at tiny settings
and report what they promise; thread capping."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml

from bench import cli, common, dag, quality, recipe, sampling
from bench import train as train_bench
from fundiff import device, recipes, scriptutil

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "config.yaml"


def test_bench_train_tiny(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    argv = ["train", "--hidden", "8", "--batch", "32", "--steps", "2", "--warmup", "1", "--synthetic",
            "--loss-steps", "3", "--config", str(CONFIG), "--json", str(out_json)]
    results = cli.main(argv)  # exits 0 even when a bar fails (no --strict)
    printed = capsys.readouterr().out

    for mode in ("project", "reference", "plain_bf16"):
        m = results["modes"][mode]
        assert m["ms_per_step"] > 0 and m["images_per_s"] > 0 and m["gflop_per_s"] > 0
        assert mode in printed and mode in results["modes_as_run"]
    assert results["ratio"] > 0 and "ratio project/reference" in printed
    assert "ms/step" in printed and "images/s" in printed and "GFLOP/s" in printed
    assert results["gflop_per_image"] == 6.4 * (8 / 128) ** 2
    # the machine, its flags and the judged path, and what each mode ran as
    assert results["cpu_path"] in ("AMX", "AVX512-bf16", "neither") and "cpu bf16 path judged" in printed
    assert f"cpu: {results['cpu']}" in printed
    assert results["modes_as_run"]["project"].startswith("train_epoch, data in memory, " + results["runtime"].split("), ", 1)[1])
    # the bars that apply here, each with a verdict; the every-machine bar is always there
    assert results["bars"][0]["bar"].startswith("project >= plain bf16")
    assert len(results["bars"]) == (3 if results["cpu_path"] == "AMX" and not results["gpu"] else 1)
    for b in results["bars"]:
        assert f"bar: {b['bar']}: {'PASS' if b['pass'] else 'FAIL'}" in printed
    assert results["bar_pass"] == all(b["pass"] for b in results["bars"])
    lc = results["loss_check"]
    assert lc["project_loss"] > 0 and lc["reference_loss"] > 0 and "loss check" in printed
    assert json.loads(out_json.read_text())["ratio"] == results["ratio"]


def _info(path, gpu=None):
    return {"cpu_path": path, "gpu": gpu, "cpu": "test CPU"}


def test_train_bars_by_cpu_path():
    good_loss = {"rel_diff": 0.01}
    bars, skipped = train_bench.train_bars(_info("AMX"), ratio_median=5.2, plain_median=1.1, lc=good_loss)
    assert [b["pass"] for b in bars] == [True, True, True] and not skipped
    bars, _ = train_bench.train_bars(_info("AMX"), ratio_median=4.9, plain_median=1.1, lc={"rel_diff": 0.03})
    assert [b["pass"] for b in bars] == [True, False, False]
    bars, _ = train_bench.train_bars(_info("AMX"), ratio_median=6, plain_median=1.1, lc=None)  # loss check not run: the bar is not met
    assert [b["pass"] for b in bars] == [True, True, False]
    for path, gpu in (("AVX512-bf16", None), ("neither", None), ("AMX", "H100")):
        bars, skipped = train_bench.train_bars(_info(path, gpu), ratio_median=1.0, plain_median=0.9, lc=good_loss)
        assert len(bars) == 1 and not bars[0]["pass"] and len(skipped) == 1 and "AMX CPUs only" in skipped[0]


def test_train_strict_exit_status(monkeypatch):
    for ok, code in ((True, None), (False, 1)):
        monkeypatch.setattr(train_bench, "bench_train", lambda args, ok=ok: {"bar_pass": ok})
        argv = ["train", "--synthetic", "--strict"]
        if code is None:
            assert cli.main(argv) == {"bar_pass": True}
        else:
            with pytest.raises(SystemExit) as err:
                cli.main(argv)
            assert err.value.code == code
        cli.main(["train", "--synthetic"])  # without --strict: returns, whatever the verdict


def test_cpu_path():
    assert common.cpu_path({"avx2", "avx512_bf16", "amx_bf16", "amx_tile"}) == "AMX"
    assert common.cpu_path({"avx2", "avx512f", "avx512_bf16"}) == "AVX512-bf16"
    assert common.cpu_path({"avx2", "fma"}) == "neither"


def test_bench_sampling_tiny(tmp_path, capsys):
    out_json = tmp_path / "sampling.json"
    results = cli.main(["sampling", "--samples", "4", "--steps", "6", "--hidden", "4", "--warmup", "1",
                          "--config", str(CONFIG), "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert set(results["samplers"]) == {"ddpm", "flow"}
    for kind, r in results["samplers"].items():
        p, c = r["modes"]["project"], r["modes"]["course"]
        for m in (p, c):
            assert m["images_per_s"] > 0 and m["ms_per_step"] > 0 and m["gflop_per_s"] > 0
            # images/s of a run of --steps steps at the mean timed step
            assert m["images_per_s"] == pytest.approx(4 / (m["ms_per_step"] / 1e3 * 6))
        assert r["ratio"] == pytest.approx(p["images_per_s"] / c["images_per_s"])
        assert f"ratio project/course: {r['ratio']:.2f}x" in printed
        a = r["agreement"]
        assert a["agree"] and a["max_abs_diff"] <= a["tolerance"] and a["precision"] in ("fp32", "bf16")
        assert r["forward_gflop_per_image"] > 0
    assert results["all_agree"] and printed.count("AGREE") == 2 and "DISAGREE" not in printed
    assert "cpu bf16 path judged" in printed
    assert json.loads(out_json.read_text())["samplers"]["ddpm"]["ratio"] == results["samplers"]["ddpm"]["ratio"]


def test_sampling_agreement_catches_a_wrong_step():
    """The tolerance is far below what a wrong step does: other noise or another schedule disagrees."""
    from fundiff import ddpm, part_b, train

    config = yaml.safe_load(CONFIG.read_text())
    state = sampling.sampling_state(config, "ddpm/class_cond", 4, 20, 0)
    out = part_b.sample_checkpoint(state, device.resolve("cpu", "auto"), 4, 0, guidance=5.0)
    model = train.build_model(state).eval()
    cond = torch.nn.functional.one_hot(part_b.sample_labels(4), 10).float()
    right = train.schedule_for(state["recipe"])
    for schedule, seed, agree in ((right, 0, True), (right, 1, False), (ddpm.make_schedule(20, 1e-4, 0.03), 0, False)):
        *_, x = sampling.course_ddpm(model, schedule, cond, 5.0, torch.Generator().manual_seed(seed), "cpu")
        assert sampling.agreement(out["samples"], x, "fp32")["agree"] == agree
    assert torch.is_grad_enabled()  # the course loop's no_grad does not leak out of the generator


def tiny_config(tmp_path) -> Path:
    """config/smoke.yaml (every Part B model) at yet smaller sizes."""
    config = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    config["data"]["train_limit"] = 128
    pb = config["part_b"]
    pb.update(num_samples=10, gif_frames=2, step_comparison=[2, 4])
    pb["ddpm"]["num_steps"] = 8
    pb["flow"]["num_steps"] = 4
    for model in recipes.models(config):
        recipes.model_settings(config, model).update(hidden=4, batch_size=32)
    config["evaluation"].update(num_samples=20, batch_size=10)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_bench_recipe_tiny(tmp_path, capsys):
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    out_json = tmp_path / "recipe.json"
    results = cli.main(["recipe", "--device", "cpu", "--scale", "0.5", "--config", str(path), "--synthetic", "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert "EXTRAPOLATED" in printed and results["extrapolated"] and results["scale"] == 0.5
    assert list(results["models"]) == recipes.models(config) and len(results["models"]) == 7
    for model, m in results["models"].items():
        assert model in printed
        t = m["train"]
        settings = recipes.model_settings(config, model)
        assert t["epochs"] == settings["epochs"] == len(t["per_epoch"])
        assert t["steps_per_epoch"] == 4 and t["steps_run_per_epoch"] == 2  # 128 images / batch 32, half of it run
        assert t["seconds"] > 0 and t["images_per_s"] > 0 and t["tflop_per_s"] > 0 and t["gflop_per_image"] > 0
        assert t["images"] == 128 * settings["epochs"]
        s = m["sampling"]
        if "/" not in model:
            assert s is None
            continue
        jobs = recipe.sampling_jobs(config, model)
        assert s["runs"] == len(jobs) and s["images"] == sum(j["samples"] for j in jobs)
        assert s["seconds"] > 0 and s["images_per_s"] > 0 and s["tflop_per_s"] > 0
        assert set(s["by_job"]) == {"gif", "eval"} | ({"step_comparison"} if model.endswith("/class_cond") else set())
    assert results["total_s"] == pytest.approx(results["train_s"] + results["sampling_s"])
    assert json.loads(out_json.read_text())["total_s"] == results["total_s"]


def test_bench_recipe_models_subset(tmp_path, capsys):
    path = tiny_config(tmp_path)
    results = cli.main(["recipe", "--device", "cpu", "--scale", "0.25", "--config", str(path), "--synthetic", "--models", "flow/time_cond"])
    assert list(results["models"]) == ["flow/time_cond"] and "not the whole recipe" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not among the config's models"):
        cli.main(["recipe", "--device", "cpu", "--config", str(path), "--synthetic", "--models", "ddpm/nope"])


def test_sampling_jobs_of_the_course_config():
    config = yaml.safe_load(CONFIG.read_text())
    jobs = recipe.sampling_jobs(config, "ddpm/class_cond")
    kinds = [j["job"] for j in jobs]
    # settings: epochs 1, 5, 10, 15, 20 at gamma 5 and the sweep's 6 at epoch 20 (5 shared): 10, each
    # 1000 evaluation samples in batches of 500 (the grid is their first 40); one animation; the step
    # comparison's 4 step counts
    assert (kinds.count("grid"), kinds.count("gif"), kinds.count("step_comparison"), kinds.count("eval")) == (0, 1, 4, 20)
    assert sorted(j["steps"] for j in jobs if j["job"] == "step_comparison") == [5, 10, 50, 300]
    assert all(j["samples"] == 500 for j in jobs if j["job"] == "eval")
    time_jobs = recipe.sampling_jobs(config, "ddpm/time_cond")
    assert all(j["guidance"] is None for j in time_jobs) and "step_comparison" not in {j["job"] for j in time_jobs}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_recipe_cuda_without_gpu_exits_with_a_message(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["recipe", "--device", "cuda", "--scale", "0.01"])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "no CUDA GPU" in message and "--device cpu" in message and "Traceback" not in message


def test_thread_capping(monkeypatch):
    assert scriptutil.torch_threads(8, cpus=2) == 2
    assert scriptutil.torch_threads(1, cpus=2) == 1
    assert scriptutil.torch_threads(4, cpus=16) == 4
    assert scriptutil.torch_threads(0, cpus=4) == 1
    assert scriptutil.usable_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert scriptutil.usable_cpus() == 3 and scriptutil.torch_threads(8) == 3


def test_setup_caps_threads_and_logs_both(tmp_path, monkeypatch):
    log = tmp_path / "job.log"
    root = logging.getLogger()
    handlers, level, threads = root.handlers[:], root.level, torch.get_num_threads()
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # setup() points stderr at the log; restored after
    monkeypatch.setattr(scriptutil, "usable_cpus", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    try:
        scriptutil.setup(str(log), threads=8, device="cpu", precision="fp32")
        assert torch.get_num_threads() == 2
        sys.stderr.flush()
        text = log.read_text()
    finally:
        for h in root.handlers:
            if h not in handlers:
                h.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        torch.set_num_threads(threads)
    assert "2 CPU threads (job threads 8, usable CPUs 2)" in text
    assert re.findall(r"runtime: .*CUDA_VISIBLE_DEVICES=(\S+)", text) == ["0"]  # what tests/test_slurm.py reads
    assert re.search(r"runtime: cpu", text)


def test_setup_without_torch_leaves_torch_unloaded_but_capped(tmp_path):
    """A plotting or gates job does not import torch through setup(); should torch load later,
    it starts with the capped thread count (OMP_NUM_THREADS)."""
    code = (
        "import sys, os\n"
        "from fundiff import figures, gates, scriptutil\n"
        "scriptutil.usable_cpus = lambda: 2\n"
        f"scriptutil.setup({str(tmp_path / 'job.log')!r}, threads=8)\n"
        "print('torch' in sys.modules)\n"
        "import torch\n"
        "print(torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out == ["False", "2"]


def test_finish_flushes_the_log_and_exits_zero_and_a_failure_still_fails(tmp_path):
    log = tmp_path / "job.log"
    body = f"import logging\nfrom fundiff.scriptutil import finish, setup\nsetup({str(log)!r})\nlogging.getLogger('fundiff').info('written before finish')\nprint('on stdout', end='')\n"
    ok = subprocess.run([sys.executable, "-c", body + "finish()\nraise SystemExit(3)\n"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == "on stdout"
    assert "written before finish" in log.read_text()
    failed = subprocess.run([sys.executable, "-c", body + "raise ValueError('bad input')\nfinish()\n"], capture_output=True, text=True)
    assert failed.returncode == 1 and "ValueError: bad input" in log.read_text()


def test_every_job_script_ends_with_finish():
    scripts = sorted((Path(__file__).resolve().parents[1] / "scripts").glob("*.py"))
    assert len(scripts) >= 30
    for path in scripts:
        lines = path.read_text().rstrip().splitlines()
        assert lines[-1] == "finish()", path.name
        assert any(re.match(r"from fundiff\.scriptutil import .*\bfinish\b", line) for line in lines), path.name


def _benchmark(path: Path, wall: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
    path.write_text(f"{header}\n{wall}\t0:00:0{int(wall)}\t1\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def test_dag_summary_of_benchmark_files(tmp_path, capsys):
    b = tmp_path / "benchmarks"
    _benchmark(b / "part_b/ddpm/time_cond/train_epoch_001.tsv", 5.0, 4.5)
    _benchmark(b / "part_b/flow/class_cond/train_epoch_002.tsv", 3.0, 2.5)
    _benchmark(b / "part_b/ddpm/class_cond/epoch_002/sample_cfg5.tsv", 2.5, 2.0)
    _benchmark(b / "part_a/anagram/00.tsv", 12.0, 11.0)
    _benchmark(b / "part_a/hybrid/00.tsv", 10.0, 9.0)
    (b / "empty.tsv").write_text("")  # a job killed before its benchmark was written: skipped
    rows = dag.read_benchmarks(tmp_path)
    assert len(rows) == 5 and sum(r["wall_s"] for r in rows) == pytest.approx(32.5)
    summary = dag.summarize_dag(rows, span_s=20.0, cores=2)
    assert summary["busy"] == pytest.approx(32.5 / 40)
    assert summary["per_kind"]["part_b/<model>/train_epoch"] == {"jobs": 2, "wall_s": 8.0}
    assert summary["per_kind"]["part_a/illusion"] == {"jobs": 2, "wall_s": 22.0}
    assert summary["per_kind"]["part_b/<model>/sample"] == {"jobs": 1, "wall_s": 2.5}
    assert [r["job"] for r in summary["slowest"]][:2] == ["part_a/anagram/00", "part_a/hybrid/00"]
    out = cli.main(["dag", "--summarize", str(tmp_path), "--json", str(tmp_path / "dag.json")])
    text = capsys.readouterr().out
    assert out["bar_pass"] is None and "5 jobs with benchmarks: jobs' wall times add up to 32.5 s" in text and "cpu: " in text
    assert json.loads((tmp_path / "dag.json").read_text())["sum_wall_s"] == pytest.approx(32.5)
    with pytest.raises(SystemExit, match="no benchmarks/ folder"):
        cli.main(["dag", "--summarize", str(tmp_path / "nothing")])


def test_dag_runs_a_workflow_from_nothing_and_judges_the_bar(tmp_path, capsys):
    """The run path on a two-job Snakefile: timed, summed, the bar applied, --strict exits 1."""
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        'rule all:\n    input: "b.txt"\n'
        'rule a:\n    output: "a.txt"\n    benchmark: "benchmarks/a.tsv"\n    shell: "sleep 0.5; echo a > {output}"\n'
        'rule b:\n    input: "a.txt"\n    output: "b.txt"\n    benchmark: "benchmarks/b.tsv"\n    shell: "sleep 0.5; cat {input} > {output}"\n'
    )
    config = tmp_path / "c.yaml"
    config.write_text("x: 1\n")
    run = tmp_path / "run"
    out = cli.main(["dag", "--snakefile", str(snakefile), "--config", str(config), "--cores", "1", "--directory", str(run), "--bar", "600"])
    assert out["jobs"] == 2 and out["bar_pass"] is True and 1.0 <= out["span_s"] < 600 and (run / "b.txt").exists()
    assert out["sum_wall_s"] >= 1.0 and 0 < out["busy"] <= 1.05
    assert "bar: span <= 600 s: PASS" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["dag", "--snakefile", str(snakefile), "--config", str(config), "--cores", "1", "--bar", "0.01", "--strict"])
    assert exc.value.code == 1
    with pytest.raises(SystemExit, match="not empty"):
        cli.main(["dag", "--snakefile", str(snakefile), "--config", str(config), "--directory", str(run)])


def test_bench_recipe_concurrent_trains_each_model_as_alone(tmp_path, capsys):
    """--concurrent interleaves the models' training steps (on a GPU each model on its own CUDA
    stream): every model ends with the losses and weights it gets when trained alone, and the
    recipe reports one training time for all of them."""
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    models = ["single_step", "ddpm/class_cond", "flow/class_cond"]
    rt = device.resolve("cpu", "auto")
    images, labels, _ = recipe.load_train_split(config, SimpleNamespace(data_root=None, synthetic=True), rt.device)
    together, final = recipe.train_concurrently(models, config, images, labels, rt, scale=1.0)
    assert together["steps_run"] == together["steps"] == sum(4 * recipes.model_settings(config, m)["epochs"] for m in models)
    assert together["seconds"] == pytest.approx(together["measured_s"]) and together["tflop_per_s"] > 0
    for m in models:
        _, alone = recipe.time_training(m, config, images, labels, rt, 1.0)
        assert final[m]["epoch"] == alone["epoch"] == recipes.model_settings(config, m)["epochs"]
        assert torch.equal(final[m]["losses"], alone["losses"]), m
        for k, v in alone["model"].items():
            assert torch.equal(final[m]["model"][k], v), (m, k)
    results = cli.main(["recipe", "--device", "cpu", "--scale", "0.5", "--config", str(path), "--synthetic",
                          "--models", ",".join(models), "--concurrent"])
    printed = capsys.readouterr().out
    assert "all models' training together" in printed and "EXTRAPOLATED" in printed
    c = results["concurrent"]
    assert c["steps_run"] == c["steps"] // 2 and results["train_s"] == pytest.approx(c["seconds"])
    assert c["seconds"] == pytest.approx(c["measured_s"] * 2)
    assert all(results["models"][m]["train"] is None for m in models)
    assert results["models"]["ddpm/class_cond"]["sampling"]["seconds"] > 0


def test_bench_quality_reproduces_the_pipelines_reading_and_reads_more_seeds(smoke_dir, tmp_path, capsys, monkeypatch):
    """Trained from scratch with the smoke config (unguided), the first seed's reading is the one the
    pipeline's own final flow checkpoint gives with the same sampling (the same training and
    evaluation seed; the share exactly, the Frechet distance to bf16 rounding, 1 %, where another
    seed's is further off); the other seeds are other samples; --set changes the recipe. Unguided,
    because autoguidance amplifies the rounding difference between the two trainings."""
    config = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    config["data"]["root"] = str(smoke_dir / config["data"]["root"])
    config["part_b"]["flow"]["time_cond"].update(guide_epoch=None, guide_weight=None)
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    evaluation = ["--run-dir", str(smoke_dir)]
    model = "flow/time_cond"
    results = cli.main(["quality", "--config", str(path), "--model", model, "--seeds", "2", *evaluation])
    printed = capsys.readouterr().out
    pipeline = cli.main(["quality", "--config", str(path), "--model", model, "--seeds", "1", "--reuse-checkpoints", *evaluation])["per_seed"][0]
    first, second = results["per_seed"]
    assert first["seed"] == pipeline["seed"]
    assert first["confident_fraction"] == pytest.approx(pipeline["confident_fraction"], abs=1e-9)
    pipeline_ratio = pipeline["frechet_ratio"]
    assert first["frechet_ratio"] == pytest.approx(pipeline_ratio, rel=0.01)
    assert second["seed"] == first["seed"] + quality.SEED_STRIDE
    assert abs(second["frechet_ratio"] - pipeline_ratio) > 2 * abs(first["frechet_ratio"] - pipeline_ratio)
    assert results["mean"]["frechet_ratio"] == pytest.approx((first["frechet_ratio"] + second["frechet_ratio"]) / 2)
    assert "mean of 2 x 40 samples" in printed and "cpu bf16 path judged" in printed

    changed = cli.main(["quality", "--config", str(path), "--model", "ddpm/class_cond", "--set", "epochs=1", "--set", "show_epochs=[1]",
                        "--seeds", "1", "--samples", "20", *evaluation])
    assert changed["recipe"]["epochs"] == 1 and changed["per_seed"][0]["accuracy"] is not None
    with pytest.raises(SystemExit, match="must be one of"):
        cli.main(["quality", "--config", str(path), "--model", "single_step", *evaluation])
    with pytest.raises(SystemExit, match="reference_metrics"):
        cli.main(["quality", "--config", str(path), "--run-dir", str(tmp_path)])


def test_bench_quality_reuses_a_runs_checkpoints_for_sampling_settings(smoke_dir, tmp_path, capsys):
    """--reuse-checkpoints samples the run's own final and guide checkpoints: with the config as it is
    (the smoke run autoguides the time-conditioned DDPM's epoch 2 by epoch 1) the first seed reads
    what the pipeline's metrics.csv holds; a changed guide weight reads differently; a setting that
    changes the weights is refused, naming it."""
    config = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    config["data"]["root"] = str(smoke_dir / config["data"]["root"])
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    model = "ddpm/time_cond"
    settings = config["part_b"]["ddpm"]["time_cond"]
    assert settings["guide_epoch"] < settings["epochs"]
    common_args = ["quality", "--config", str(path), "--model", model, "--seeds", "1", "--run-dir", str(smoke_dir), "--reuse-checkpoints"]
    results = cli.main(common_args)
    assert f"(the checkpoints of the run in {smoke_dir})" in capsys.readouterr().out and results["train_cpu_s"] is None
    metrics = pd.read_csv(smoke_dir / "results" / "part_b" / model / f"epoch_{settings['epochs']:03d}" / "metrics.csv").iloc[0]
    reference_fd = pd.read_csv(smoke_dir / "results" / "evaluation" / "reference_metrics.csv").iloc[0]["frechet_distance"]
    first = results["per_seed"][0]
    assert first["confident_fraction"] == pytest.approx(metrics["confident_fraction"], abs=1e-9)
    assert first["frechet_ratio"] == pytest.approx(metrics["frechet_distance"] / reference_fd, rel=1e-4)
    other = cli.main([*common_args, "--set", "guide_weight=1.0"])["per_seed"][0]
    assert other["frechet_ratio"] != pytest.approx(first["frechet_ratio"], rel=1e-3)
    with pytest.raises(SystemExit, match=r"--reuse-checkpoints: .*trained with different settings \(lr: checkpoint"):
        cli.main([*common_args, "--set", "lr=0.5"])
