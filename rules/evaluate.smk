# Measured sample quality (src/fundiff/evaluate.py):
#   MNIST -> train_classifier (fails below evaluation.min_test_accuracy) -> reference_metrics (real test digits)
#   {ddpm,flow}/* epoch_NNN.pt -> sample_model (rules/part_b.smk: evaluation.num_samples per epoch
#                                and gamma, the grid is their first part_b.num_samples) -> sample_metrics
#   every metrics CSV -> quality_figures: per model metrics.csv, quality_vs_epoch.png, and for
#                        class-conditioned models per_class_accuracy.png (+ guidance_tradeoff.png with a sweep)
# The settings evaluated are those of the sample grids (recipes.sample_files): every shown epoch
# at the model's gamma, plus the guidance sweep at the final epoch.

EV = config["evaluation"]
CLASSIFIER = "results/evaluation/classifier.pt"
REFERENCE = "results/evaluation/reference_metrics.csv"
REFERENCE_STATS = "results/evaluation/reference_stats.pt"  # test-split feature mean and covariance


def final_epoch(model):
    return recipes.model_settings(config, model)["epochs"]


rule train_classifier:
    input:
        mnist=MNIST_READY,
    output:
        model=CLASSIFIER,
        csv="results/evaluation/classifier.csv",
    params:
        data_root=config["data"]["root"],
        train_limit=config["data"]["train_limit"],
        test_limit=config["data"]["test_limit"],
        epochs=EV["classifier"]["epochs"],
        batch_size=EV["classifier"]["batch_size"],
        lr=EV["classifier"]["lr"],
        min_test_accuracy=EV["min_test_accuracy"],
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/evaluation/train_classifier.log",
    benchmark:
        "benchmarks/evaluation/train_classifier.tsv"
    threads: job_threads(4)
    priority: 1  # every sample_metrics job waits for it: ahead of Part A and the sampling jobs (0), behind the training chains
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        TORCH_ENV
    script:
        "../scripts/train_classifier.py"


rule reference_metrics:
    input:
        classifier=CLASSIFIER,
        mnist=MNIST_READY,
    output:
        csv=REFERENCE,
        stats=REFERENCE_STATS,
    params:
        data_root=config["data"]["root"],
        test_limit=config["data"]["test_limit"],
        num_samples=EV["num_samples"],
        min_test_accuracy=EV["min_test_accuracy"],
        seed=config["seed"],
        **runtime_params(),
    log:
        "logs/evaluation/reference_metrics.log",
    benchmark:
        "benchmarks/evaluation/reference_metrics.tsv"
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    conda:
        TORCH_ENV
    script:
        "../scripts/reference_metrics.py"


rule sample_metrics:
    input:
        samples="results/part_b/{gen_model}/epoch_{epoch}/eval_samples{cfg}.pt",
        classifier=CLASSIFIER,
        reference_stats=REFERENCE_STATS,
    output:
        "results/part_b/{gen_model}/epoch_{epoch}/metrics{cfg}.csv",
    wildcard_constraints:
        cfg=r"(_cfg\d+(\.\d+)?)?",
    params:
        min_test_accuracy=EV["min_test_accuracy"],
        **runtime_params(),
    log:
        "logs/part_b/{gen_model}/epoch_{epoch}/sample_metrics{cfg}.log",
    benchmark:
        "benchmarks/part_b/{gen_model}/epoch_{epoch}/sample_metrics{cfg}.tsv"
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    conda:
        TORCH_ENV
    script:
        "../scripts/sample_metrics.py"


def quality_models():
    """Per generative model, what the quality_figures job reads and writes."""
    return {
        m: {
            "metrics": recipes.metrics_files(config, m),
            "outputs": recipes.quality_files(config, m),
            "guidance": model_guidance(m),
            "final_epoch": final_epoch(m),
        }
        for m in recipes.generative_models(config)
    }


# one job for every model's summary: each is a few small plots, cheaper than a Python start-up per figure
rule quality_figures:
    input:
        metrics=[f for q in quality_models().values() for f in q["metrics"]],
        reference=REFERENCE,
    output:
        [
            report(f, caption="../report/captions/evaluation.rst", category="Evaluation", subcategory=m)
            if f.endswith(".png")
            else f
            for m, q in quality_models().items()
            for f in q["outputs"].values()
        ],
    params:
        models=quality_models(),
    log:
        "logs/evaluation/quality_figures.log",
    benchmark:
        "benchmarks/evaluation/quality_figures.tsv"
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/quality_figures.py"

