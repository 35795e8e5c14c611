# fun-with-diffusion: every result of CS180 "Fun With Diffusion Models" from one command.
#
# Paths: results/<part>/<model>/epoch_<NNN>/<what>.<ext>, logs/ and benchmarks/ mirror them.
# Run:   snakemake --cores 8 --resources gpu=1            (config/config.yaml, full recipe)
#        snakemake --cores 8 part_b                         (one part: part_a, part_b, evaluation, report)
#        snakemake --cores 2 --configfile config/smoke.yaml (tiny settings)


import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# the default config lives beside this file, so `-s path/to/Snakefile --directory elsewhere` works too;
# read strictly first, so that a tab or a YAML slip in it is named with its line (rules/common.smk
# then reads every config file strictly, --configfile ones included)
DEFAULT_CONFIG = Path(workflow.basedir) / "config" / "config.yaml"
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from fundiff.configfile import ConfigFileError, load as strict_load

if DEFAULT_CONFIG.exists():
    try:
        strict_load(DEFAULT_CONFIG)
    except ConfigFileError as err:
        raise WorkflowError(f"Invalid config: {err}")


configfile: str(DEFAULT_CONFIG)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/part_b.smk"
include: "rules/evaluate.smk"
include: "rules/part_a.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),


# partial runs: `snakemake part_b` (or part_a, evaluation, report) builds that part and what it needs
rule part_b:
    input:
        paths.part_b_targets(config),


rule part_a:
    input:
        paths.part_a_targets(config, PART_A_MODEL),


rule evaluation:
    input:
        paths.evaluation_targets(config),


rule report:
    input:
        paths.report_targets(),
