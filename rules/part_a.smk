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


rule fetch_deepfloyd:
    output:
        paths.deepfloyd_manifest("deepfloyd"),
    log:
        "logs/part_a/fetch_deepfloyd.log",
    benchmark:
        paths.BENCHMARKS["fetch_deepfloyd"]
    priority: ROOT_PRIORITY
    # a download: on a cluster it runs on the login node (compute nodes often have no internet)
    localrule: True
    conda:
        TORCH_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        repos={
            "stage1": lookup(dpath="part_a/deepfloyd/stage1_repo", within=config),
            "stage2": lookup(dpath="part_a/deepfloyd/stage2_repo", within=config),
        },
        cache_dir=lookup(dpath="part_a/deepfloyd/cache_dir", within=config),
    script:
        "../scripts/fetch_deepfloyd.py"


rule build_tiny_deepfloyd:
    output:
        paths.deepfloyd_manifest("tiny"),
    log:
        "logs/part_a/build_tiny_deepfloyd.log",
    benchmark:
        paths.BENCHMARKS["build_tiny_deepfloyd"]
    priority: ROOT_PRIORITY
    conda:
        TORCH_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        repos={
            "stage1": lookup(dpath="part_a/deepfloyd/stage1_repo", within=config),
            "stage2": lookup(dpath="part_a/deepfloyd/stage2_repo", within=config),
        },
        cache_dir=lookup(
            dpath="part_a/deepfloyd/tiny_cache",
            within=config,
            default="resources/hf_tiny",
        ),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/build_tiny_deepfloyd.py"


rule embed_prompts:
    input:
        manifest=paths.deepfloyd_manifest("{df_model}"),
    output:
        paths.prompt_embeds("{df_model}"),
    log:
        "logs/part_a/{df_model}_embed_prompts.log",
    benchmark:
        paths.BENCHMARKS["embed_prompts"]
    wildcard_constraints:
        df_model="deepfloyd|tiny",
    priority: ROOT_PRIORITY
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=24000,
        runtime=30,
    params:
        **runtime_params(),
        prompts=prompts.deepfloyd_prompts(config),
    script:
        "../scripts/embed_prompts.py"


rule part_a_setup:
    input:
        **part_a_model_inputs(),
    output:
        png=report(
            paths.part_a_file("setup/steps_{steps}.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    log:
        "logs/part_a/setup/steps_{steps}.log",
    benchmark:
        paths.BENCHMARKS["part_a_setup"]
    wildcard_constraints:
        steps=r"\d{3}",
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params(),
    script:
        "../scripts/part_a_setup.py"


rule part_a_noising:
    input:
        **part_a_model_inputs(),
        images=part_a_image_files(),
    output:
        png=report(
            paths.part_a_file("noising.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        csv=paths.part_a_file("denoise_metrics.csv"),
    log:
        "logs/part_a/noising.log",
    benchmark:
        paths.BENCHMARKS["part_a_noising"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params("forward_t"),
    script:
        "../scripts/part_a_noising.py"


rule part_a_iterative:
    input:
        **part_a_model_inputs(),
        images=part_a_image_files(),
    output:
        png=report(
            paths.part_a_file("iterative.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        csv=paths.part_a_file("iterative_metrics.csv"),
    log:
        "logs/part_a/iterative.log",
    benchmark:
        paths.BENCHMARKS["part_a_iterative"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params("iterative_i_start", "keep_every"),
    script:
        "../scripts/part_a_iterative.py"


rule part_a_sample:
    input:
        **part_a_model_inputs(),
    output:
        png=report(
            paths.part_a_file("samples{cfg}.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        tensors=paths.part_a_file("samples{cfg}.pt"),
    log:
        "logs/part_a/samples{cfg}.log",
    benchmark:
        paths.BENCHMARKS["part_a_sample"]
    wildcard_constraints:
        cfg=paths.PART_A_CFG_WILDCARD,  # 1.5 (none), 1.6 and the sweep (_cfgG), the extra prompts at gamma (_prompts_cfgG)
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params("num_samples"),
        guidance=guidance_of,
        extra_prompts=lambda wc: wc.cfg.startswith("_prompts"),
    script:
        "../scripts/part_a_sample.py"


rule part_a_sdedit:
    input:
        **part_a_model_inputs(),
        images=part_a_image_files(),
    output:
        png=report(
            paths.part_a_file("sdedit/{image}.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    log:
        "logs/part_a/sdedit/{image}.log",
    benchmark:
        paths.BENCHMARKS["part_a_sdedit"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params("cfg_scale", "sdedit_i_starts"),
    script:
        "../scripts/part_a_sdedit.py"


rule part_a_text_edit:
    input:
        **part_a_model_inputs(),
        images=part_a_image_files(),
    output:
        png=report(
            paths.part_a_file("text_edit/{index}.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    log:
        "logs/part_a/text_edit/{index}.log",
    benchmark:
        paths.BENCHMARKS["part_a_text_edit"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params("cfg_scale", "sdedit_i_starts"),
    script:
        "../scripts/part_a_sdedit.py"


rule part_a_inpaint:
    input:
        **part_a_model_inputs(),
        images=part_a_image_files(),
    output:
        png=report(
            paths.part_a_file("inpaint/{index}.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
    log:
        "logs/part_a/inpaint/{index}.log",
    benchmark:
        paths.BENCHMARKS["part_a_inpaint"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params("cfg_scale"),
    script:
        "../scripts/part_a_inpaint.py"


rule part_a_illusion:
    input:
        **part_a_model_inputs(),
    output:
        png=report(
            paths.part_a_file("{kind}/{index}.png"),
            caption="../report/captions/part_a.rst",
            category="Part A",
        ),
        tensors=paths.part_a_file("{kind}/{index}.pt"),
    log:
        "logs/part_a/{kind}/{index}.log",
    benchmark:
        paths.BENCHMARKS["part_a_illusion"]
    wildcard_constraints:
        kind="anagram|hybrid",
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        **PART_A_RESOURCES,
    params:
        **part_a_params("cfg_scale"),
    script:
        "../scripts/part_a_illusion.py"


rule part_a_readings:
    input:
        classifier=paths.CLASSIFIER,
        samples=paths.part_a_file("samples.pt"),
        illusions=part_a_illusion_tensors(),
    output:
        paths.READINGS,
    log:
        "logs/part_a/readings.log",
    benchmark:
        paths.BENCHMARKS["part_a_readings"]
    conda:
        TORCH_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        **runtime_params(),
        min_test_accuracy=lookup(dpath="evaluation/min_test_accuracy", within=config),
    script:
        "../scripts/part_a_readings.py"
