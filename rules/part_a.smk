# Part A: the course's sampling experiments, run on the model chosen once at DAG build
# (part_a.model; `auto` picks DeepFloyd IF where its weights are cached or a token is set, else
# the final class-conditioned MNIST DDPM of Part B; `tiny` is DeepFloyd's code path on tiny
# random IF models built offline). Every experiment rule reads the chosen model's files:
#   deepfloyd: fetch_deepfloyd -> manifest; tiny: build_tiny_deepfloyd -> manifest
#              manifest -> embed_prompts (T5 only, once) -> prompt embeddings
#              manifest + embeddings -> part_a_setup (section 0, stage I + II) and every rule below
#   mnist:     final ddpm/class_cond checkpoint -> every rule below
#   part_a_noising, part_a_iterative, part_a_sample, part_a_sdedit, part_a_text_edit,
#   part_a_inpaint, part_a_illusion (anagram, hybrid)

from snakemake.logging import logger

PA = config["part_a"]
DF = PA["deepfloyd"]
PART_A_MODEL, PART_A_REASON = recipes.choose_part_a_model(PA["model"], DF["stage1_repo"], DF["cache_dir"])
logger.info(f"Part A runs on the {PART_A_MODEL} model ({PART_A_REASON}).")
PART_A_SECTION = recipes.part_a_section(config, PART_A_MODEL)
DEEPFLOYD_MANIFEST = f"resources/deepfloyd/{PART_A_MODEL}_manifest.json"
PROMPT_EMBEDS = f"resources/deepfloyd/{PART_A_MODEL}_prompt_embeds.pt"


def part_a_model_inputs():
    """What every experiment job loads: the MNIST checkpoint, or the manifest and embeddings."""
    if PART_A_MODEL == "mnist":
        epoch = PA["mnist"].get("epoch")  # null: the final epoch
        ckpt = final_checkpoint("ddpm/class_cond") if epoch is None else checkpoint_path("ddpm/class_cond", epoch)
        return {"checkpoint": ckpt, "mnist": MNIST_READY}
    return {"manifest": DEEPFLOYD_MANIFEST, "embeds": PROMPT_EMBEDS}


def part_a_params():
    return {"model": PART_A_MODEL, "pa": PA, "seed": config["seed"], "data_root": config["data"]["root"], "base_dir": workflow.basedir, **runtime_params()}


def part_a_image_files():
    """Image files Part A reads (relative paths are relative to the workflow folder)."""
    files = [spec.get("file", spec.get("source", "")) for spec in PART_A_SECTION["images"].values()]
    files += [e["mask"] for e in PART_A_SECTION["inpaint"] if "mask" in e]
    files = [f for f in files if f and not f.startswith(("skimage:", "http://", "https://", "file:"))]
    return [f if Path(f).is_absolute() else str(Path(workflow.basedir) / f) for f in files]


PART_A_RESOURCES = {"gpu": 1, "mem_mb": 4000 if PART_A_MODEL in ("mnist", "tiny") else 32000, "runtime": 30 if PART_A_MODEL in ("mnist", "tiny") else 120}


rule fetch_deepfloyd:
    output:
        "resources/deepfloyd/deepfloyd_manifest.json",
    params:
        repos={"stage1": DF["stage1_repo"], "stage2": DF["stage2_repo"]},
        cache_dir=DF["cache_dir"],
    log:
        "logs/part_a/fetch_deepfloyd.log",
    benchmark:
        "benchmarks/part_a/fetch_deepfloyd.tsv"
    threads: 1
    priority: ROOT_PRIORITY
    resources:
        mem_mb=2000,
        runtime=240,
    # a download: on a cluster it runs on the login node (compute nodes often have no internet)
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/fetch_deepfloyd.py"


rule build_tiny_deepfloyd:
    output:
        "resources/deepfloyd/tiny_manifest.json",
    params:
        repos={"stage1": DF["stage1_repo"], "stage2": DF["stage2_repo"]},
        cache_dir=DF.get("tiny_cache", "resources/hf_tiny"),
        seed=config["seed"],
    log:
        "logs/part_a/build_tiny_deepfloyd.log",
    benchmark:
        "benchmarks/part_a/build_tiny_deepfloyd.tsv"
    threads: 1
    priority: ROOT_PRIORITY
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        TORCH_ENV
    script:
        "../scripts/build_tiny_deepfloyd.py"


rule embed_prompts:
    input:
        manifest="resources/deepfloyd/{df_model}_manifest.json",
    output:
        "resources/deepfloyd/{df_model}_prompt_embeds.pt",
    wildcard_constraints:
        df_model="deepfloyd|tiny",
    params:
        prompts=recipes.deepfloyd_prompts(config),
        **runtime_params(),
    log:
        "logs/part_a/{df_model}_embed_prompts.log",
    benchmark:
        "benchmarks/part_a/{df_model}_embed_prompts.tsv"
    threads: job_threads(2)
    priority: ROOT_PRIORITY
    resources:
        gpu=1,
        mem_mb=24000,
        runtime=30,
    conda:
        TORCH_ENV
    script:
        "../scripts/embed_prompts.py"


rule part_a_setup:
    input:
        **part_a_model_inputs(),
    output:
        png=report(
            "results/part_a/setup/steps_{steps}.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    wildcard_constraints:
        steps=r"\d{3}",
    params:
        **part_a_params(),
    log:
        "logs/part_a/setup/steps_{steps}.log",
    benchmark:
        "benchmarks/part_a/setup/steps_{steps}.tsv"
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_setup.py"


rule part_a_noising:
    input:
        **part_a_model_inputs(),
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
    benchmark:
        "benchmarks/part_a/noising.tsv"
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_noising.py"


rule part_a_iterative:
    input:
        **part_a_model_inputs(),
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
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_iterative.py"


rule part_a_sample:
    input:
        **part_a_model_inputs(),
    output:
        png=report(
            "results/part_a/samples{cfg}.png",
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        tensors="results/part_a/samples{cfg}.pt",
    wildcard_constraints:
        cfg=r"((_prompts)?_cfg\d+(\.\d+)?)?",  # 1.5 (none), 1.6 and the sweep (_cfgG), the extra prompts at gamma (_prompts_cfgG)
    params:
        guidance=lambda wc: float(wc.cfg.rsplit("_cfg", 1)[1]) if wc.cfg else None,
        extra_prompts=lambda wc: wc.cfg.startswith("_prompts"),
        **part_a_params(),
    log:
        "logs/part_a/samples{cfg}.log",
    benchmark:
        "benchmarks/part_a/samples{cfg}.tsv"
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_sample.py"


rule part_a_sdedit:
    input:
        **part_a_model_inputs(),
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
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_sdedit.py"


rule part_a_text_edit:
    input:
        **part_a_model_inputs(),
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
    benchmark:
        "benchmarks/part_a/text_edit/{index}.tsv"
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_sdedit.py"


rule part_a_inpaint:
    input:
        **part_a_model_inputs(),
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
    benchmark:
        "benchmarks/part_a/inpaint/{index}.tsv"
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_inpaint.py"


rule part_a_illusion:
    input:
        **part_a_model_inputs(),
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
    benchmark:
        "benchmarks/part_a/{kind}/{index}.tsv"
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_illusion.py"


rule part_a_readings:
    input:
        classifier=CLASSIFIER,
        samples="results/part_a/samples.pt",
        illusions=[f"results/part_a/{kind}/{i:02d}.pt" for kind, key in (("anagram", "anagrams"), ("hybrid", "hybrids")) for i in range(len(PART_A_SECTION[key]))],
    output:
        "results/part_a/readings.csv",
    params:
        min_test_accuracy=EV["min_test_accuracy"],
        **runtime_params(),
    log:
        "logs/part_a/readings.log",
    benchmark:
        "benchmarks/part_a/readings.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        TORCH_ENV
    script:
        "../scripts/part_a_readings.py"
