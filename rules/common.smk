# Config validation, target lists and input functions shared by every rule file.

import json
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from fundiff import recipes  # torch-free: keeps `snakemake -n` cheap


validate(config, schema="../config/schema.yaml")
try:
    recipes.check(config)
except recipes.ConfigError as err:
    raise WorkflowError(f"Invalid config: {err}")


wildcard_constraints:
    epoch=r"\d{3}",
    model="|".join(recipes.PART_B_MODELS),
    ddpm_model="|".join(recipes.DDPM_MODELS),
    gamma=r"\d+(\.\d+)?",


MNIST_READY = f"{config['data']['root']}/mnist_manifest.json"


def all_targets():
    return recipes.part_b_targets(config) + ["results/report/index.html"]


def checkpoint_path(model, epoch):
    return f"results/part_b/{model}/checkpoints/epoch_{int(epoch):03d}.pt"


def previous_checkpoint(wildcards):
    epoch = int(wildcards.epoch)
    if epoch < 1:
        raise ValueError(f"epoch must be >= 1, got {wildcards.epoch}")
    return checkpoint_path(wildcards.model, epoch - 1)


def final_checkpoint(model):
    return checkpoint_path(model, config["part_b"][model]["epochs"])


def runtime_params():
    return {"device": config["device"], "precision": config["precision"]}
