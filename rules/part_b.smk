# Part B experiments on the per-epoch checkpoints:
#   MNIST -> noising_grid
#   single_step epoch_NNN.pt -> denoise_examples, ood_test, test_metrics -> plot_test_metrics
#   pure_noise epoch_NNN.pt -> pure_noise_examples (beside the mean training image)
#   {ddpm,flow}/{time_cond,class_cond,...} epoch_NNN.pt -> sample_model (one gamma per job: the
#       evaluation's sample set, whose first part_b.num_samples make the grid)
#   final checkpoints -> sampling_gif, step_comparison (class-conditioned, both editions), loss_curve


rule noising_grid:
    input:
        mnist=MNIST_READY,
    output:
        report(
            paths.model_file("single_step", "noising_grid.png"),
            caption="../report/captions/noising.rst",
            category="Part B",
            subcategory="1 single-step denoiser",
        ),
    log:
        "logs/part_b/single_step/noising_grid.log",
    benchmark:
        paths.BENCHMARKS["noising_grid"]
    conda:
        TORCH_ENV
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        data_root=mnist_root,
        sigmas=lookup(dpath="part_b/noise_sigmas", within=config),
        num_digits=lookup(dpath="part_b/num_test_digits", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/noising_grid.py"


rule denoise_examples:
    input:
        checkpoint=lambda wc: paths.checkpoint("single_step", wc.epoch),
        mnist=MNIST_READY,
    output:
        paths.epoch_pattern("single_step", "denoised.png"),
    log:
        "logs/part_b/single_step/epoch_{epoch}/denoise_examples.log",
    benchmark:
        paths.BENCHMARKS["denoise_examples"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    params:
        **runtime_params(),
        data_root=mnist_root,
        sigma=lookup(dpath="part_b/single_step/sigma", within=config),
        num_digits=lookup(dpath="part_b/num_test_digits", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/denoise_examples.py"


rule ood_test:
    input:
        checkpoint=lambda wc: paths.checkpoint("single_step", wc.epoch),
        mnist=MNIST_READY,
    output:
        paths.epoch_pattern("single_step", "ood.png"),
    log:
        "logs/part_b/single_step/epoch_{epoch}/ood_test.log",
    benchmark:
        paths.BENCHMARKS["ood_test"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    params:
        **runtime_params(),
        data_root=mnist_root,
        sigmas=lookup(dpath="part_b/noise_sigmas", within=config),
        num_digits=lookup(dpath="part_b/num_test_digits", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/ood_test.py"


rule test_metrics:
    input:
        checkpoint=lambda wc: paths.checkpoint("single_step", wc.epoch),
        mnist=MNIST_READY,
    output:
        paths.TEST_METRICS,
    log:
        "logs/part_b/single_step/epoch_{epoch}/test_metrics.log",
    benchmark:
        paths.BENCHMARKS["test_metrics"]
    conda:
        TORCH_ENV
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    params:
        **runtime_params(),
        data_root=mnist_root,
        test_limit=lookup(dpath="data/test_limit", within=config),
        sigmas=lookup(dpath="part_b/noise_sigmas", within=config),
        train_sigma=lookup(dpath="part_b/single_step/sigma", within=config),
        off_sigma_images=lookup(dpath="part_b/off_sigma_test_images", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/test_metrics.py"


rule plot_test_metrics:
    input:
        paths.test_metrics_files(config),
    output:
        report(
            paths.model_file("single_step", "test_mse.png"),
            caption="../report/captions/test_mse.rst",
            category="Part B",
            subcategory="1 single-step denoiser",
        ),
    log:
        "logs/part_b/single_step/plot_test_metrics.log",
    benchmark:
        paths.BENCHMARKS["plot_test_metrics"]
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/plot_test_metrics.py"


rule pure_noise_examples:
    input:
        checkpoint=lambda wc: paths.checkpoint("pure_noise", wc.epoch),
        mnist=MNIST_READY,
    output:
        png=paths.epoch_pattern("pure_noise", "denoised.png"),
        csv=paths.epoch_pattern("pure_noise", "mse_to_mean.csv"),
    log:
        "logs/part_b/pure_noise/epoch_{epoch}/pure_noise_examples.log",
    benchmark:
        paths.BENCHMARKS["pure_noise_examples"]
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    params:
        **runtime_params(),
        data_root=mnist_root,
        train_limit=lookup(dpath="data/train_limit", within=config),
        num_digits=lookup(dpath="part_b/num_test_digits", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/pure_noise_examples.py"


rule sample_model:
    input:
        checkpoint=lambda wc: paths.checkpoint(wc.gen_model, wc.epoch),
        guide=lambda wc: guide_checkpoint(wc.gen_model, wc.epoch),
    output:
        png=report(
            paths.SAMPLES_PNG,
            caption="../report/captions/samples.rst",
            category="Part B",
            subcategory="{gen_model}",
        ),
        tensors=paths.SAMPLES_PT,
        eval_samples=paths.EVAL_SAMPLES,
    log:
        "logs/part_b/{gen_model}/epoch_{epoch}/sample{cfg}.log",
    benchmark:
        paths.BENCHMARKS["sample_model"]
    wildcard_constraints:
        cfg=paths.CFG_WILDCARD,
    conda:
        TORCH_ENV
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        **runtime_params(),
        num_samples=lookup(dpath="evaluation/num_samples", within=config),
        batch_size=lookup(dpath="evaluation/batch_size", within=config),
        grid_samples=lookup(dpath="part_b/num_samples", within=config),
        guidance=guidance_of,
        guide_weight=lambda wc: guide_weight(wc.gen_model, wc.epoch),
        num_steps=lambda wc: sampling_steps(wc.gen_model),
        variance=lookup(
            dpath="part_b/ddpm/sample_variance", within=config, default="beta"
        ),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/sample_model.py"


rule sampling_gif:
    input:
        checkpoint=lambda wc: final_checkpoint(wc.gen_model),
        guide=lambda wc: guide_checkpoint(wc.gen_model, final_epoch(wc.gen_model)),
    output:
        report(
            paths.model_file("{gen_model}", "sampling.gif"),
            caption="../report/captions/sampling_gif.rst",
            category="Part B",
            subcategory="{gen_model}",
        ),
    log:
        "logs/part_b/{gen_model}/sampling_gif.log",
    benchmark:
        paths.BENCHMARKS["sampling_gif"]
    conda:
        TORCH_ENV
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    params:
        **runtime_params(),
        num_samples=lookup(dpath="part_b/num_samples", within=config),
        guidance=lambda wc: model_guidance(wc.gen_model),
        guide_weight=lambda wc: guide_weight(wc.gen_model, final_epoch(wc.gen_model)),
        num_steps=lambda wc: sampling_steps(wc.gen_model),
        variance=lookup(
            dpath="part_b/ddpm/sample_variance", within=config, default="beta"
        ),
        frames=lookup(dpath="part_b/gif_frames", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/sampling_gif.py"


rule step_comparison:
    input:
        checkpoints=[
            final_checkpoint(f"{e}/class_cond") for e in config["part_b"]["editions"]
        ],
    output:
        png=report(
            paths.part_b_file("step_comparison.png"),
            caption="../report/captions/step_comparison.rst",
            category="Part B",
            subcategory="extras",
        ),
        csv=paths.part_b_file("step_comparison.csv"),
    log:
        "logs/part_b/step_comparison.log",
    benchmark:
        paths.BENCHMARKS["step_comparison"]
    priority: 1000  # the longest sampling job (every step count up to T): start it as soon as both final models exist
    conda:
        TORCH_ENV
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        **runtime_params(),
        models=[f"{e}/class_cond" for e in config["part_b"]["editions"]],
        steps=lookup(dpath="part_b/step_comparison", within=config),
        num_samples=lookup(dpath="part_b/step_comparison_samples", within=config)
        or lookup(dpath="part_b/num_samples", within=config),
        guidance=lambda wildcards: {
            e: model_guidance(f"{e}/class_cond") for e in config["part_b"]["editions"]
        },
        variance=lookup(
            dpath="part_b/ddpm/sample_variance", within=config, default="beta"
        ),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/step_comparison.py"


rule loss_curve:
    input:
        checkpoint=lambda wc: final_checkpoint(wc.model),
    output:
        png=report(
            paths.model_file("{model}", "loss_curve.png"),
            caption="../report/captions/loss_curve.rst",
            category="Part B",
            subcategory="{model}",
        ),
        csv=paths.model_file("{model}", "losses.csv"),
    log:
        "logs/part_b/{model}/loss_curve.log",
    benchmark:
        paths.BENCHMARKS["loss_curve"]
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/loss_curve.py"
