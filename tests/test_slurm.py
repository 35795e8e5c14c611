"""The smoke DAG on a real one-node SLURM cluster, through snakemake-executor-plugin-slurm.

tests/slurm_cluster.sh installs (apt) and starts munged, slurmctld and slurmd with every file
under a temporary folder and fake GPUs (symlinks to /dev/null in gres.conf), so `--gpus=1` jobs get
CUDA_VISIBLE_DEVICES from SLURM as on a real GPU node. The workflow runs with
profiles/slurm-local; every `gpu=1` job must have been submitted with `--gpus=1` and its script
must have seen CUDA_VISIBLE_DEVICES set (scriptutil.setup logs it in each rule's log), while the
test's own environment has it unset. The run gets a site profile (`--profile`) holding the account
and partition, as profiles/README.md advises: every submitted job must carry both. Needs root and
apt-get: skips elsewhere, fails under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from fundiff import recipes

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SMOKE = REPO / "config" / "smoke.yaml"
CLUSTER = REPO / "tests" / "slurm_cluster.sh"
PROFILE = REPO / "profiles" / "slurm-local"
# the whole run, killed (SIGKILL: the plugin can ignore SIGTERM while it polls) past this
RUN_LIMIT_S = 1200


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"the SLURM test must run in CI: {reason}")
    pytest.skip(reason)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return f"--- {path.name}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"--- {path.name}: (none)"


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running cluster; yields its folder (slurm.conf, log/). Daemons are stopped by PID after."""
    if os.geteuid() != 0:
        _unavailable("needs root to install and start SLURM")
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        _unavailable("needs apt-get (Debian/Ubuntu) to install SLURM")
    # munged runs as user munge and must reach its socket: a world-traversable folder under /tmp
    folder = Path(tempfile.mkdtemp(prefix="fundiff-slurm-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        proc = subprocess.run(["bash", str(CLUSTER), "start", str(folder)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            logs = "\n".join(_tail(folder / "log" / f) for f in ("slurmctld.log", "slurmd.log"))
            _unavailable(f"could not start the SLURM test cluster:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}\n{logs}")
        yield folder
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop", str(folder)], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _job_blocks(text: str) -> list[dict]:
    """Snakemake's job blocks: rule, rule log, resources and, for jobs sent to SLURM, its job id and log."""
    jobs, block = {}, {}
    for line in text.splitlines():
        if m := re.match(r"^(local)?rule (\w+):$", line):
            block = {"rule": m.group(2), "local": bool(m.group(1))}
        elif m := re.match(r"^\s+log: (\S+)", line):
            block["log"] = m.group(1)
        elif m := re.match(r"^\s+resources: (.*)$", line):
            block["resources"] = m.group(1)
        elif m := re.match(r"^\s+threads: (\d+)$", line):
            block["threads"] = int(m.group(1))
        elif m := re.match(r"^\s+jobid: (\d+)$", line):
            jobs[m.group(1)] = block
        elif m := re.match(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$", line):
            jobs[m.group(1)].update(slurm_id=m.group(2), slurm_log=m.group(3))
    return list(jobs.values())


def _resources(job: dict) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in job.get("resources", "").split(", ") if "=" in kv)


def _dry_run(tmp_path: Path, configfile: Path, profile: str, *args: str) -> list[dict]:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(configfile), "--workflow-profile", profile, "-n", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return _job_blocks(proc.stdout + proc.stderr)


def test_slurm_profiles_cover_every_gpu_rule(tmp_path):
    """A new GPU rule must get its entry in profiles/slurm, and a memory-hungry one in slurm-local."""
    default = REPO / "config" / "config.yaml"
    plain = _dry_run(tmp_path / "plain", default, "none")
    gpu_rules = {j["rule"] for j in plain if _resources(j).get("gpu") == "1"}
    hungry = {j["rule"] for j in plain if not j["local"] and int(_resources(j).get("mem_mb", "0")) > 1000}
    assert "train_epoch" in gpu_rules
    cluster = yaml.safe_load((PROFILE.parent / "slurm" / "config.yaml").read_text())
    listed = {rule for rule, res in cluster["set-resources"].items() if res.get("gpu") == 1}
    assert gpu_rules <= listed, f"add to profiles/slurm/config.yaml: {sorted(gpu_rules - listed)}"
    local = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert hungry <= set(local["set-resources"]), f"add to profiles/slurm-local/config.yaml: {sorted(hungry - set(local['set-resources']))}"
    # the cluster profile parses and reaches the jobs (a dry run does not talk to SLURM)
    on_slurm = _dry_run(tmp_path / "slurm", default, str(PROFILE.parent / "slurm"))
    train = next(_resources(j) for j in on_slurm if j["rule"] == "train_epoch")
    assert (train["gpu"], train["cpus_per_task"], train["mem_mb"], train["runtime"]) == ("1", "8", "8000", "120"), train


def local_rules() -> set[str]:
    """Rules that never reach sbatch: `localrule: True` ones and the Snakefile's target rules
    (a dry run does not mark them)."""
    names = set(re.findall(r"^rule (\w+):", (REPO / "Snakefile").read_text(), flags=re.M))
    for path in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"(?m)^(?=rule )", path.read_text())[1:]:
            if "\n    localrule: True" in block:
                names.add(block.split(":")[0].split()[1])
    return names


def site_profile(folder: Path, account: str = "fundiff", partition: str = "debug") -> Path:
    """A user's own site profile, as profiles/README.md advises: account and partition under
    default-resources (it must survive the workflow profile)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(f"default-resources:\n  slurm_account: {account}\n  slurm_partition: {partition}\n")
    return folder


def test_no_workflow_profile_sets_default_resources():
    """Snakemake ignores every other profile's default-resources when the workflow profile sets
    them: a site profile's account and partition would be dropped without a word."""
    for path in sorted((REPO / "profiles").glob("*/config.yaml")):
        assert "default-resources" not in yaml.safe_load(path.read_text()), f"{path}: move its default-resources into the rules"


@pytest.mark.parametrize("profile", ["slurm", "slurm-local"])
def test_site_profile_account_and_partition_reach_every_job(tmp_path, profile):
    site = site_profile(tmp_path / "site", account="proj123", partition="gpu_a100")
    jobs = _dry_run(tmp_path / "run", SMOKE, str(REPO / "profiles" / profile), "--profile", str(site))
    submitted = [j for j in jobs if j["rule"] not in local_rules()]
    assert len(submitted) > 20
    for job in submitted:
        res = _resources(job)
        assert (res.get("slurm_account"), res.get("slurm_partition")) == ("proj123", "gpu_a100"), job
        assert res.get("mem_mb", "<TBD>") != "<TBD>" and res.get("runtime"), job  # each rule sets its own


def test_downloads_run_on_the_login_node(tmp_path):
    """Compute nodes often have no internet: the downloads are localrules."""
    jobs = _dry_run(tmp_path, REPO / "config" / "config.yaml", str(PROFILE.parent / "slurm"), "--config", "part_a={model: deepfloyd}")
    assert {"download_mnist", "fetch_deepfloyd"} <= {j["rule"] for j in jobs}
    assert {"download_mnist", "fetch_deepfloyd"} <= local_rules()


class _Resources(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _plugin_job(job: dict, **changes):
    """A job as the plugin's submission code sees it: name, threads, resources (ints as ints)."""
    from types import SimpleNamespace

    res = {k: int(v) if v.isdigit() else v for k, v in _resources(job).items() if v != "<TBD>"}
    res.update(changes)
    return SimpleNamespace(name=job["rule"], threads=job.get("threads", 1), resources=_Resources({k: v for k, v in res.items() if v is not None}))


def _sbatch(job) -> str:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    validate_slurm_extra(job)
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": f"rule_{job.name}", "account": "-A a", "partition": "-p p", "workdir": "/w"}
    return get_submit_command(job, params) + set_gres_string(job)


def test_every_rule_passes_the_plugins_own_validation(tmp_path):
    """Every job's resources from profiles/slurm (course recipe, Part A on DeepFloyd IF and on the
    tiny models) through the installed plugin's own checks and sbatch line; then the GPU-type
    advice of profiles/README.md (`gpu_model`, or `gres` instead of `gpu`) on a GPU rule, and the
    old `slurm_extra: '--gres=...'` advice, which the plugin refuses."""
    from snakemake_interface_common.exceptions import WorkflowError

    slurm = str(PROFILE.parent / "slurm")
    jobs = _dry_run(tmp_path / "a", REPO / "config" / "config.yaml", slurm, "--config", "part_a={model: deepfloyd}")
    jobs += _dry_run(tmp_path / "b", SMOKE, slurm)
    submitted = [j for j in jobs if j["rule"] not in local_rules()]
    rules = {j["rule"] for j in submitted}
    assert {"train_epoch", "embed_prompts", "build_tiny_deepfloyd", "part_a_sample", "sample_metrics"} <= rules, rules
    for job in submitted:
        line = _sbatch(_plugin_job(job))
        gpu = _resources(job).get("gpu") == "1"
        assert ("--gpus=1" in line) == gpu and f"--mem {_resources(job)['mem_mb']}" in line and " -t " in line, (job["rule"], line)
    train = next(j for j in submitted if j["rule"] == "train_epoch")
    assert "--gpus=a100:1" in _sbatch(_plugin_job(train, gpu_model="a100"))
    line = _sbatch(_plugin_job(train, gpu=None, gres="gpu:a100:1"))
    assert "--gres=gpu:a100:1" in line and "--gpus" not in line
    with pytest.raises(WorkflowError, match="GRES.*not allowed in the 'slurm_extra' parameter"):
        _sbatch(_plugin_job(train, gpu=None, slurm_extra="'--gres=gpu:a100:1'"))
    # no document or profile gives the refused advice any more
    for path in [REPO / "README.md", REPO / "profiles" / "README.md", *(REPO / "profiles").glob("*/config.yaml")]:
        assert not re.search(r"slurm_extra:\s*\S*--(gres|gpus)", path.read_text()), path


# A slice of the smoke DAG that reaches every kind of job (data, init, per-epoch training,
# sampling, metrics, animation, localrules) in a few minutes: the whole smoke DAG (~80 jobs)
# takes about 14 minutes through SLURM on two loaded cores, too long for every CI run.
SLURM_TARGETS = [
    "results/part_b/ddpm/class_cond/epoch_002/samples_cfg5.png",
    "results/part_b/ddpm/class_cond/sampling.gif",
    "results/part_b/ddpm/class_cond/loss_curve.png",
    "results/part_b/single_step/test_mse.png",
]
SLURM_MODELS = ("single_step", "ddpm/class_cond")


@pytest.mark.slow
def test_smoke_dag_on_slurm(slurm_cluster, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES" and not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["SLURM_CONF"] = str(slurm_cluster / "slurm.conf")
    cmd = [
        "timeout", "-s", "KILL", str(RUN_LIMIT_S),
        SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(SMOKE),
        # the user's site profile (account, partition) under the workflow profile, as profiles/README.md advises
        "--profile", str(site_profile(tmp_path / "site")),
        "--workflow-profile", str(PROFILE),  # jobs: 4 (2 running, 2 queued), see the profile
        # the device the course recipe uses; CUDA_VISIBLE_DEVICES=0 without a GPU must fall back to the CPU
        *SLURM_TARGETS,
        "--config", "device=auto",
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - start
    out = proc.stdout
    (workdir / "snakemake.out").write_text(out)
    print(f"smoke DAG on SLURM: {wall:.0f} s")
    logs = "\n".join(_tail(slurm_cluster / "log" / f) for f in ("slurmctld.log", "slurmd.log"))
    assert proc.returncode == 0, f"snakemake on SLURM failed ({proc.returncode}, {wall:.0f} s):\n{out[-6000:]}\n{logs}"

    # every requested output
    cfg = yaml.safe_load(SMOKE.read_text())
    missing = [t for t in SLURM_TARGETS if not (workdir / t).is_file() or (workdir / t).stat().st_size == 0]
    assert not missing, missing

    # every job but the localrules went through sbatch, and left its SLURM log
    jobs = [j for j in _job_blocks(out) if "slurm_id" in j]
    rules = {j["rule"] for j in jobs}
    assert {"init_model", "train_epoch", "sample_model", "test_metrics", "sampling_gif"} <= rules, rules
    assert not rules & {"loss_curve", "plot_test_metrics", "download_mnist"}, "localrules must not be submitted"
    assert any(j["rule"] == "download_mnist" for j in _job_blocks(out)), "download_mnist ran on the login node"
    for job in jobs:
        assert Path(job["slurm_log"]).is_file(), job
    epochs = sum(recipes.model_settings(cfg, m)["epochs"] for m in SLURM_MODELS)
    assert sum(j["rule"] == "train_epoch" for j in jobs) == epochs

    # SLURM ran each of them to completion
    shown = subprocess.run(["scontrol", "show", "job", "-o"], env=env, capture_output=True, text=True, check=True).stdout
    states = dict(re.findall(r"JobId=(\d+) .*?JobState=(\S+)", shown))
    per_job = {m.group(1): m.group(0) for m in re.finditer(r"JobId=(\d+) .*", shown)}
    for job in jobs:
        assert states.get(job["slurm_id"]) == "COMPLETED", (job, per_job.get(job["slurm_id"]))
        # the site profile's account and partition reached every job, past the workflow profile
        assert re.search(r"\bAccount=fundiff\b", per_job[job["slurm_id"]]) and re.search(r"\bPartition=debug\b", per_job[job["slurm_id"]]), per_job[job["slurm_id"]]

    # gpu=1 jobs asked SLURM for a GPU and their scripts saw the one it gave them; the others did not ask
    gpu_jobs = [j for j in jobs if re.search(r"\bgpu=1\b", j.get("resources", ""))]
    assert {"train_epoch", "sample_model", "test_metrics", "sampling_gif"} <= {j["rule"] for j in gpu_jobs}
    for job in jobs:
        requested = "TresPerJob=gres:gpu:1" in per_job[job["slurm_id"]]
        assert requested == (job in gpu_jobs), (job, per_job[job["slurm_id"]])
    for job in gpu_jobs:
        text = (workdir / job["log"]).read_text()
        seen = re.findall(r"runtime: .*CUDA_VISIBLE_DEVICES=(\S+)", text)
        assert seen and all(re.fullmatch(r"\d+", v) for v in seen), f"{job['log']}: {seen}\n{text[-1000:]}"
        # no GPU here: device auto fell back to the CPU
        if not shutil.which("nvidia-smi"):
            assert re.search(r"runtime: cpu", text), text[-1000:]
