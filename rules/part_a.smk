# Part A: the course's sampling experiments, run on the model chosen once at DAG build
# (part_a.model; `auto` picks DeepFloyd IF only where it is available and built, else the
# final class-conditioned MNIST DDPM of Part B). Every rule reads that model's checkpoint:
#   final ddpm/class_cond checkpoint -> part_a_noising, part_a_iterative, part_a_sample,
#   part_a_sdedit, part_a_text_edit, part_a_inpaint, part_a_anagram, part_a_hybrid

from snakemake.logging import logger

PA = config["part_a"]
PART_A_MODEL, PART_A_REASON = recipes.choose_part_a_model(PA["model"], PA["stage1_repo"])
logger.info(f"Part A runs on the {PART_A_MODEL} model ({PART_A_REASON}).")
PART_A_CHECKPOINT = final_checkpoint("ddpm/class_cond")


def part_a_params():
    return {"pa": PA, "seed": config["seed"], "data_root": config["data"]["root"], "base_dir": workflow.basedir, **runtime_params()}


def part_a_image_files():
    """Image files Part A reads (relative paths are relative to the workflow folder)."""
    files = [spec["file"] for spec in PA["mnist"]["images"].values() if "file" in spec]
    return [f if Path(f).is_absolute() else str(Path(workflow.basedir) / f) for f in files]


PART_A_RESOURCES = {"gpu": 1, "mem_mb": 4000, "runtime": 30}


rule part_a_noising:
    input:
        checkpoint=PART_A_CHECKPOINT,
        mnist=MNIST_READY,
        images=part_a_image_files(),
    output:
        png=report(
            "results/part_a/noising.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        csv="results/part_a/denoise_metrics.csv",
    params:
        **part_a_params(),
    log:
        "logs/part_a/noising.log",
    threads: 2
    resources:
        **PART_A_RESOURCES,
    script:
        "../scripts/part_a_noising.py"


rule part_a_iterative:
    input:
        checkpoint=PART_A_CHECKPOINT,
        mnist=MNIST_READY,
        images=part_a_image_files(),
    output:
        png=report(
            "results/part_a/iterative.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        csv="results/part_a/iterative_metrics.csv",
    params:
        **part_a_params(),
    log:
        "logs/part_a/iterative.log",
    benchmark:
        "benchmarks/part_a/iterative.tsv"
    threads: 2
    resources:
        **PART_A_RESOURCES,
    script:
        "../scripts/part_a_iterative.py"


rule part_a_sample:
    input:
        checkpoint=PART_A_CHECKPOINT,
    output:
        png=report(
            "results/part_a/samples{cfg}.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        tensors="results/part_a/samples{cfg}.pt",
    wildcard_constraints:
        cfg=r"(_cfg\d+(\.\d+)?)?",
    params:
        guidance=lambda wc: float(wc.cfg[4:]) if wc.cfg else None,
        **part_a_params(),
    log:
        "logs/part_a/samples{cfg}.log",
    benchmark:
        "benchmarks/part_a/samples{cfg}.tsv"
    threads: 2
    resources:
        **PART_A_RESOURCES,
    script:
        "../scripts/part_a_sample.py"


rule part_a_sdedit:
    input:
        checkpoint=PART_A_CHECKPOINT,
        mnist=MNIST_READY,
        images=part_a_image_files(),
    output:
        png=report(
            "results/part_a/sdedit/{image}.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    params:
        **part_a_params(),
    log:
        "logs/part_a/sdedit/{image}.log",
    benchmark:
        "benchmarks/part_a/sdedit/{image}.tsv"
    threads: 2
    resources:
        **PART_A_RESOURCES,
    script:
        "../scripts/part_a_sdedit.py"


rule part_a_text_edit:
    input:
        checkpoint=PART_A_CHECKPOINT,
        mnist=MNIST_READY,
        images=part_a_image_files(),
    output:
        png=report(
            "results/part_a/text_edit/{index}.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    params:
        **part_a_params(),
    log:
        "logs/part_a/text_edit/{index}.log",
    threads: 2
    resources:
        **PART_A_RESOURCES,
    script:
        "../scripts/part_a_sdedit.py"


rule part_a_inpaint:
    input:
        checkpoint=PART_A_CHECKPOINT,
        mnist=MNIST_READY,
        images=part_a_image_files(),
    output:
        png=report(
            "results/part_a/inpaint/{index}.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    params:
        **part_a_params(),
    log:
        "logs/part_a/inpaint/{index}.log",
    threads: 2
    resources:
        **PART_A_RESOURCES,
    script:
        "../scripts/part_a_inpaint.py"


rule part_a_illusion:
    input:
        checkpoint=PART_A_CHECKPOINT,
    output:
        png=report(
            "results/part_a/{kind}/{index}.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        tensors="results/part_a/{kind}/{index}.pt",
    wildcard_constraints:
        kind="anagram|hybrid",
    params:
        **part_a_params(),
    log:
        "logs/part_a/{kind}/{index}.log",
    threads: 2
    resources:
        **PART_A_RESOURCES,
    script:
        "../scripts/part_a_illusion.py"
