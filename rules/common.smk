# Config validation, the names every rule file shares (paths, the Part A model, resources) and
# the input and params functions of the rules. Path patterns live in src/fundiff/paths.py.

import os
import sys
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
# all torch-free: keeps `snakemake -n` cheap
from fundiff import config_checks, paths, prompts, recipes
from fundiff import configfile as config_files
from fundiff.errors import ConfigError
from fundiff.part_a_model import choose_part_a_model

# the config files read again, strictly: a key given twice, a tab, an empty file, 1e-4 read as text
try:
    config_files.check(config, workflow.configfiles)
except config_files.ConfigFileError as err:
    raise WorkflowError(f"Invalid config: {err}")
# values inside a --config dictionary arrive as text ('7.0', '0', 'true'): read them by the schema's types
CONFIG_SCHEMA = config_files.load_schema(
    Path(workflow.basedir) / "config" / "schema.yaml"
)
config_files.coerce_text(config, CONFIG_SCHEMA, given=workflow.config_settings.config)
try:
    validate(config, schema="../config/schema.yaml")
except WorkflowError as err:
    import jsonschema

    invalid = (
        err.__cause__ or err.__context__
    )  # validate() raises it while handling jsonschema's error
    if not isinstance(invalid, jsonschema.ValidationError):
        raise
    raise WorkflowError(
        f"Invalid config: {config_files.explain(invalid, CONFIG_SCHEMA)}"
    ) from None
try:
    config_checks.check(config)
    config_checks.check_data_root(config["data"]["root"])
except ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}")


# No usable GPU: a recipe estimated to take over 2 hours on this CPU prints the estimate and the laptop
# command; an NVIDIA GPU PyTorch cannot use (a wheel for a newer CUDA than the driver's) is named, with
# the fix. Only in the main process (not again in every cluster job); torch stays out of this process.
if workflow.is_main_process:
    from fundiff import machine

    _gpu = machine.gpu_state()
    _advice = machine.advice(
        config, _gpu, lambda: machine.cpu_gflops(machine.cpu_cache())
    )
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
# Declared as an envvar so that remote jobs receive it too.
TORCH_ENV = str(Path(workflow.basedir) / "envs" / "torch.yaml")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p
    for p in [str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH", "")]
    if p
)


envvars:
    "PYTHONPATH",


MNIST_READY = f"{config['data']['root']}/mnist_manifest.json"

# The roots of the DAG's two big subtrees (MNIST for every training chain, the DeepFloyd weights
# for every Part A job) run before anything else that is ready: left to the training priorities,
# the seven epoch-0 initialisations went first and delayed both chains.
ROOT_PRIORITY = 1_000_000

# Part A runs on the model chosen once at DAG build (part_a.model; `auto` picks DeepFloyd IF where
# its weights are cached or a token is set, else the final class-conditioned MNIST DDPM).
PART_A_MODEL, PART_A_REASON = choose_part_a_model(
    config["part_a"]["model"],
    config["part_a"]["deepfloyd"]["stage1_repo"],
    config["part_a"]["deepfloyd"]["cache_dir"],
)
logger.info(f"Part A runs on the {PART_A_MODEL} model ({PART_A_REASON}).")
PART_A_SECTION_KEY = "mnist" if PART_A_MODEL == "mnist" else "deepfloyd"
PART_A_SECTION = paths.part_a_section(config, PART_A_MODEL)
PART_A_RESOURCES = {
    "gpu": 1,
    "mem_mb": 4000 if PART_A_MODEL in ("mnist", "tiny") else 32000,
    "runtime": 30 if PART_A_MODEL in ("mnist", "tiny") else 120,
}
# the keys of config part_a every experiment's model context reads (timesteps, blurs, its section)
PART_A_CONTEXT_KEYS = (
    "timesteps",
    "blur",
    "hybrid_blur",
    "threshold_x0",
    PART_A_SECTION_KEY,
)


def job_threads(n):
    """A rule's threads, capped by the config's max_job_threads (null: no cap). With a cap of 1,
    `--cores 2` runs two single-threaded jobs side by side, which on two cores trains the small
    UNets about 25 % faster than one job on two threads."""
    cap = config.get("max_job_threads")
    return min(n, cap) if cap else n


def runtime_params():
    return {"device": config["device"], "precision": config["precision"]}


def mnist_root(wildcards, input):
    """data.root, as the folder of the MNIST manifest a job reads."""
    return str(Path(input.mnist).parent)


def previous_checkpoint(wildcards):
    return paths.checkpoint(wildcards.model, int(wildcards.epoch) - 1)


def final_checkpoint(model):
    return paths.final_checkpoint(config, model)


def model_guidance(model):
    return recipes.model_settings(config, model).get("guidance")


def sampling_steps(model):
    return recipes.sampling_steps(config, model)


def final_epoch(model):
    return recipes.model_settings(config, model)["epochs"]


def guide_checkpoint(model, epoch):
    """The earlier checkpoint that autoguides the samples of `model` after `epoch` ([] for none)."""
    guide = recipes.autoguide(config, model, epoch)
    return [] if guide is None else paths.checkpoint(model, guide[0])


def guide_weight(model, epoch):
    guide = recipes.autoguide(config, model, epoch)
    return None if guide is None else guide[1]


def guidance_of(wildcards):
    """The guidance scale a {cfg} wildcard names (None: no guidance)."""
    return paths.parse_cfg(wildcards.cfg)


def part_a_model_inputs():
    """What every Part A experiment job loads: the MNIST checkpoint, or the manifest and embeddings."""
    if PART_A_MODEL == "mnist":
        epoch = config["part_a"]["mnist"].get("epoch")  # null: the final epoch
        ckpt = (
            final_checkpoint("ddpm/class_cond")
            if epoch is None
            else paths.checkpoint("ddpm/class_cond", epoch)
        )
        return {"checkpoint": ckpt, "mnist": MNIST_READY}
    return {
        "manifest": paths.deepfloyd_manifest(PART_A_MODEL),
        "embeds": paths.prompt_embeds(PART_A_MODEL),
    }


def part_a_data_root(wildcards, input):
    return str(Path(input.mnist).parent) if PART_A_MODEL == "mnist" else None


def part_a_params(*keys):
    """A Part A experiment's params: the model, and of config part_a only the keys its context and
    the experiment itself read (`keys`), so that changing another key leaves the job alone.
    """
    pa = config["part_a"]
    wanted = PART_A_CONTEXT_KEYS + keys
    return {
        "model": PART_A_MODEL,
        "pa": {k: pa[k] for k in wanted if k in pa},
        "seed": config["seed"],
        "data_root": part_a_data_root,
        "base_dir": lambda wildcards: workflow.basedir,
        **runtime_params(),
    }


def part_a_image_files():
    """Image files Part A reads (relative paths are relative to the workflow folder)."""
    files = [
        spec.get("file", spec.get("source", ""))
        for spec in PART_A_SECTION["images"].values()
    ]
    files += [e["mask"] for e in PART_A_SECTION["inpaint"] if "mask" in e]
    files = [
        f
        for f in files
        if f and not f.startswith(("skimage:", "http://", "https://", "file:"))
    ]
    return [
        f if Path(f).is_absolute() else str(Path(workflow.basedir) / f) for f in files
    ]


def quality_models():
    """Per generative model, what the quality_figures job reads and writes."""
    return {
        m: {
            "metrics": paths.metrics_files(config, m),
            "outputs": paths.quality_files(config, m),
            "guidance": model_guidance(m),
            "final_epoch": recipes.model_settings(config, m)["epochs"],
        }
        for m in recipes.generative_models(config)
    }


def quality_figure_outputs():
    """The quality_figures job's outputs, its figures marked for Snakemake's report."""
    caption = "../report/captions/evaluation.rst"
    out = []
    for m, q in quality_models().items():
        for f in q["outputs"].values():
            marked = report(f, caption=caption, category="Evaluation", subcategory=m)
            out.append(marked if f.endswith(".png") else f)
    return out


def part_a_illusion_tensors():
    return paths.illusion_tensors(config, PART_A_MODEL)


def all_targets():
    return paths.all_targets(config, PART_A_MODEL)
