# Config validation, target lists and input functions shared by every rule file.

import json
import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from fundiff import recipes  # torch-free: keeps `snakemake -n` cheap
from fundiff import configfile as config_files  # torch-free too


# the config files read again, strictly: a key given twice, a tab, an empty file, 1e-4 read as text
try:
    config_files.check(config, workflow.configfiles)
except config_files.ConfigFileError as err:
    raise WorkflowError(f"Invalid config: {err}")
# values inside a --config dictionary arrive as text ('7.0', '0', 'true'): read them by the schema's types
CONFIG_SCHEMA = config_files.load_schema(Path(workflow.basedir) / "config" / "schema.yaml")
config_files.coerce_text(config, CONFIG_SCHEMA, given=workflow.config_settings.config)
try:
    validate(config, schema="../config/schema.yaml")
except WorkflowError as err:
    import jsonschema

    invalid = err.__cause__ or err.__context__  # validate() raises it while handling jsonschema's error
    if not isinstance(invalid, jsonschema.ValidationError):
        raise
    raise WorkflowError(f"Invalid config: {config_files.explain(invalid, CONFIG_SCHEMA)}") from None
try:
    recipes.check(config)
    recipes.check_data_root(config["data"]["root"])
except recipes.ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}")



# No usable GPU: a recipe estimated to take over 2 hours on this CPU prints the estimate and the laptop
# command; an NVIDIA GPU PyTorch cannot use (a wheel for a newer CUDA than the driver's) is named, with
# the fix. Only in the main process (not again in every cluster job); torch stays out of this process.
if workflow.is_main_process:
    from fundiff import machine

    _gpu = machine.gpu_state()
    _advice = machine.advice(config, _gpu, lambda: machine.cpu_gflops(machine.cpu_cache()))
    if _advice:
        print(f"\n{_advice}\n", file=sys.stderr)

wildcard_constraints:
    epoch=r"\d{3}",
    model="|".join(recipes.ALL_MODELS),
    gen_model="|".join(m for m in recipes.ALL_MODELS if "/" in m),
    denoiser="single_step|pure_noise",
    index=r"\d{2}",


# Every job runs the project's package: with `--software-deployment-method conda` the job's
# environment (envs/torch.yaml) holds the dependencies and src/ on PYTHONPATH holds fundiff;
# in the project's own virtual environment fundiff is installed and this changes nothing.
TORCH_ENV = str(Path(workflow.basedir) / "envs" / "torch.yaml")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH", "")] if p)


MNIST_READY = f"{config['data']['root']}/mnist_manifest.json"

# The roots of the DAG's two big subtrees (MNIST for every training chain, the DeepFloyd weights
# for every Part A job) run before anything else that is ready: left to the training priorities,
# the seven epoch-0 initialisations went first and delayed both chains (smoke DAG, README Speed).
ROOT_PRIORITY = 1_000_000


REPORT_TARGETS = ["results/quality_gates.csv", "results/report/index.html"]


def all_targets():
    return recipes.part_b_targets(config) + recipes.evaluation_targets(config) + recipes.part_a_targets(config, PART_A_MODEL) + REPORT_TARGETS


def checkpoint_path(model, epoch):
    return f"results/part_b/{model}/checkpoints/epoch_{int(epoch):03d}.pt"


def previous_checkpoint(wildcards):
    return checkpoint_path(wildcards.model, int(wildcards.epoch) - 1)


def final_checkpoint(model):
    return checkpoint_path(model, recipes.model_settings(config, model)["epochs"])


def job_threads(n):
    """A rule's threads, capped by the config's max_job_threads (null: no cap). With a cap of 1,
    `--cores 2` runs two single-threaded jobs side by side, which on two cores trains the small
    UNets about 25 % faster than one job on two threads."""
    cap = config.get("max_job_threads")
    return min(n, cap) if cap else n


def runtime_params():
    return {"device": config["device"], "precision": config["precision"]}
