# Part B experiments on the per-epoch checkpoints:
#   MNIST -> noising_grid
#   single_step epoch_NNN.pt -> denoise_examples, ood_test, test_metrics -> plot_test_metrics
#   pure_noise epoch_NNN.pt -> pure_noise_examples (beside the mean training image)
#   {ddpm,flow}/{time_cond,class_cond,...} epoch_NNN.pt -> sample_model (one gamma per job: the
#       evaluation's sample set, whose first part_b.num_samples make the grid)
#   final checkpoints -> sampling_gif, step_comparison (class-conditioned, both editions), loss_curve

PB = config["part_b"]


rule noising_grid:
    input:
        mnist=MNIST_READY,
    output:
        report(
            "results/part_b/single_step/noising_grid.png",
            caption="../report/captions/noising.rst",
            category="Part B",
            subcategory="1 single-step denoiser",
        ),
    params:
        data_root=config["data"]["root"],
        sigmas=PB["noise_sigmas"],
        num_digits=PB["num_test_digits"],
        seed=config["seed"],
    log:
        "logs/part_b/single_step/noising_grid.log",
    benchmark:
        "benchmarks/part_b/single_step/noising_grid.tsv"
    resources:
        mem_mb=2000,
        runtime=5,
    conda:
        TORCH_ENV
    script:
        "../scripts/noising_grid.py"


rule denoise_examples:
    input:
        checkpoint=lambda wc: checkpoint_path("single_step", wc.epoch),
        mnist=MNIST_READY,
    output:
        "results/part_b/single_step/epoch_{epoch}/denoised.png",
    params:
        data_root=config["data"]["root"],
        sigma=PB["single_step"]["sigma"],
        num_digits=PB["num_test_digits"],
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/part_b/single_step/epoch_{epoch}/denoise_examples.log",
    benchmark:
        "benchmarks/part_b/single_step/epoch_{epoch}/denoise_examples.tsv"
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    conda:
        TORCH_ENV
    script:
        "../scripts/denoise_examples.py"


rule ood_test:
    input:
        checkpoint=lambda wc: checkpoint_path("single_step", wc.epoch),
        mnist=MNIST_READY,
    output:
        "results/part_b/single_step/epoch_{epoch}/ood.png",
    params:
        data_root=config["data"]["root"],
        sigmas=PB["noise_sigmas"],
        num_digits=PB["num_test_digits"],
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/part_b/single_step/epoch_{epoch}/ood_test.log",
    benchmark:
        "benchmarks/part_b/single_step/epoch_{epoch}/ood_test.tsv"
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    conda:
        TORCH_ENV
    script:
        "../scripts/ood_test.py"


rule test_metrics:
    input:
        checkpoint=lambda wc: checkpoint_path("single_step", wc.epoch),
        mnist=MNIST_READY,
    output:
        "results/part_b/single_step/epoch_{epoch}/test_metrics.csv",
    params:
        data_root=config["data"]["root"],
        test_limit=config["data"]["test_limit"],
        sigmas=PB["noise_sigmas"],
        train_sigma=PB["single_step"]["sigma"],
        off_sigma_images=PB["off_sigma_test_images"],
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/part_b/single_step/epoch_{epoch}/test_metrics.log",
    benchmark:
        "benchmarks/part_b/single_step/epoch_{epoch}/test_metrics.tsv"
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    conda:
        TORCH_ENV
    script:
        "../scripts/test_metrics.py"


rule plot_test_metrics:
    input:
        expand(
            "results/part_b/single_step/epoch_{epoch:03d}/test_metrics.csv",
            epoch=PB["single_step"]["show_epochs"],
        ),
    output:
        report(
            "results/part_b/single_step/test_mse.png",
            caption="../report/captions/test_mse.rst",
            category="Part B",
            subcategory="1 single-step denoiser",
        ),
    log:
        "logs/part_b/single_step/plot_test_metrics.log",
    benchmark:
        "benchmarks/part_b/single_step/plot_test_metrics.tsv"
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/plot_test_metrics.py"


DDPM_VARIANCE = PB["ddpm"].get("sample_variance", "beta")  # sigma_t^2 of every DDPM sampling step


def sampling_steps(model):
    return recipes.sampling_steps(config, model)


def model_guidance(model):
    return recipes.model_settings(config, model).get("guidance")


rule pure_noise_examples:
    input:
        checkpoint=lambda wc: checkpoint_path("pure_noise", wc.epoch),
        mnist=MNIST_READY,
    output:
        png="results/part_b/pure_noise/epoch_{epoch}/denoised.png",
        csv="results/part_b/pure_noise/epoch_{epoch}/mse_to_mean.csv",
    params:
        data_root=config["data"]["root"],
        train_limit=config["data"]["train_limit"],
        num_digits=PB["num_test_digits"],
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/part_b/pure_noise/epoch_{epoch}/pure_noise_examples.log",
    benchmark:
        "benchmarks/part_b/pure_noise/epoch_{epoch}/pure_noise_examples.tsv"
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    conda:
        TORCH_ENV
    script:
        "../scripts/pure_noise_examples.py"


rule sample_model:
    input:
        checkpoint=lambda wc: checkpoint_path(wc.gen_model, wc.epoch),
    output:
        png=report(
            "results/part_b/{gen_model}/epoch_{epoch}/samples{cfg}.png",
            caption="../report/captions/samples.rst",
            category="Part B",
            subcategory="{gen_model}",
        ),
        tensors="results/part_b/{gen_model}/epoch_{epoch}/samples{cfg}.pt",
        eval_samples="results/part_b/{gen_model}/epoch_{epoch}/eval_samples{cfg}.pt",
    wildcard_constraints:
        cfg=r"(_cfg\d+(\.\d+)?)?",
    params:
        num_samples=config["evaluation"]["num_samples"],
        batch_size=config["evaluation"]["batch_size"],
        grid_samples=PB["num_samples"],
        guidance=lambda wc: float(wc.cfg[4:]) if wc.cfg else None,
        num_steps=lambda wc: sampling_steps(wc.gen_model),
        variance=DDPM_VARIANCE,
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/part_b/{gen_model}/epoch_{epoch}/sample{cfg}.log",
    benchmark:
        "benchmarks/part_b/{gen_model}/epoch_{epoch}/sample{cfg}.tsv"
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        TORCH_ENV
    script:
        "../scripts/sample_model.py"


rule sampling_gif:
    input:
        checkpoint=lambda wc: final_checkpoint(wc.gen_model),
    output:
        report(
            "results/part_b/{gen_model}/sampling.gif",
            caption="../report/captions/sampling_gif.rst",
            category="Part B",
            subcategory="{gen_model}",
        ),
    params:
        num_samples=PB["num_samples"],
        guidance=lambda wc: model_guidance(wc.gen_model),
        num_steps=lambda wc: sampling_steps(wc.gen_model),
        variance=DDPM_VARIANCE,
        frames=PB["gif_frames"],
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/part_b/{gen_model}/sampling_gif.log",
    benchmark:
        "benchmarks/part_b/{gen_model}/sampling_gif.tsv"
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        TORCH_ENV
    script:
        "../scripts/sampling_gif.py"


rule step_comparison:
    input:
        checkpoints=[final_checkpoint(f"{e}/class_cond") for e in PB["editions"]],
    output:
        png=report(
            "results/part_b/step_comparison.png",
            caption="../report/captions/step_comparison.rst",
            category="Part B",
            subcategory="extras",
        ),
        csv="results/part_b/step_comparison.csv",
    params:
        models=[f"{e}/class_cond" for e in PB["editions"]],
        steps=PB["step_comparison"],
        num_samples=PB["step_comparison_samples"] or PB["num_samples"],
        guidance={e: PB[e]["class_cond"]["guidance"] for e in PB["editions"]},
        variance=DDPM_VARIANCE,
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/part_b/step_comparison.log",
    benchmark:
        "benchmarks/part_b/step_comparison.tsv"
    threads: job_threads(4)
    priority: 1000  # the longest sampling job (every step count up to T): start it as soon as both final models exist
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        TORCH_ENV
    script:
        "../scripts/step_comparison.py"


rule loss_curve:
    input:
        checkpoint=lambda wc: final_checkpoint(wc.model),
    output:
        png=report(
            "results/part_b/{model}/loss_curve.png",
            caption="../report/captions/loss_curve.rst",
            category="Part B",
            subcategory="{model}",
        ),
        csv="results/part_b/{model}/losses.csv",
    log:
        "logs/part_b/{model}/loss_curve.log",
    benchmark:
        "benchmarks/part_b/{model}/loss_curve.tsv"
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/loss_curve.py"
