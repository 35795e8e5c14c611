# Measured sample quality (src/fundiff/evaluate.py):
#   MNIST -> train_classifier (fails below evaluation.min_test_accuracy) -> reference_metrics (real test digits)
#   {ddpm,flow}/* epoch_NNN.pt -> sample_model (rules/part_b.smk: evaluation.num_samples per epoch
#                                and gamma, the grid is their first part_b.num_samples) -> sample_metrics
#   every metrics CSV -> quality_figures: per model metrics.csv, quality_vs_epoch.png, and for
#                        class-conditioned models per_class_accuracy.png (+ guidance_tradeoff.png with a sweep)
# The settings evaluated are those of the sample grids (paths.sample_files): every shown epoch
# at the model's gamma, plus the guidance sweep at the final epoch.


rule train_classifier:
    input:
        mnist=MNIST_READY,
    output:
        model=paths.CLASSIFIER,
        csv=paths.CLASSIFIER_CSV,
    log:
        "logs/evaluation/train_classifier.log",
    benchmark:
        paths.BENCHMARKS["train_classifier"]
    priority: 1  # every sample_metrics job waits for it: ahead of Part A and the sampling jobs (0), behind the training chains
    conda:
        TORCH_ENV
    threads: job_threads(4)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    params:
        **runtime_params(),
        data_root=mnist_root,
        train_limit=lookup(dpath="data/train_limit", within=config),
        test_limit=lookup(dpath="data/test_limit", within=config),
        epochs=lookup(dpath="evaluation/classifier/epochs", within=config),
        batch_size=lookup(dpath="evaluation/classifier/batch_size", within=config),
        lr=lookup(dpath="evaluation/classifier/lr", within=config),
        min_test_accuracy=lookup(dpath="evaluation/min_test_accuracy", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/train_classifier.py"


rule reference_metrics:
    input:
        classifier=paths.CLASSIFIER,
        mnist=MNIST_READY,
    output:
        csv=paths.REFERENCE,
        stats=paths.REFERENCE_STATS,
    log:
        "logs/evaluation/reference_metrics.log",
    benchmark:
        paths.BENCHMARKS["reference_metrics"]
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
        test_limit=lookup(dpath="data/test_limit", within=config),
        num_samples=lookup(dpath="evaluation/num_samples", within=config),
        min_test_accuracy=lookup(dpath="evaluation/min_test_accuracy", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../scripts/reference_metrics.py"


rule sample_metrics:
    input:
        samples=paths.EVAL_SAMPLES,
        classifier=paths.CLASSIFIER,
        reference_stats=paths.REFERENCE_STATS,
    output:
        paths.SAMPLE_METRICS,
    log:
        "logs/part_b/{gen_model}/epoch_{epoch}/sample_metrics{cfg}.log",
    benchmark:
        paths.BENCHMARKS["sample_metrics"]
    wildcard_constraints:
        cfg=paths.CFG_WILDCARD,
    conda:
        TORCH_ENV
    threads: job_threads(2)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=10,
    params:
        **runtime_params(),
        min_test_accuracy=lookup(dpath="evaluation/min_test_accuracy", within=config),
    script:
        "../scripts/sample_metrics.py"


# one job for every model's summary: each is a few small plots, cheaper than a Python start-up per figure
rule quality_figures:
    input:
        metrics=[f for q in quality_models().values() for f in q["metrics"]],
        reference=paths.REFERENCE,
    output:
        quality_figure_outputs(),
    log:
        "logs/evaluation/quality_figures.log",
    benchmark:
        paths.BENCHMARKS["quality_figures"]
    localrule: True
    conda:
        TORCH_ENV
    params:
        models=quality_models(),
    script:
        "../scripts/quality_figures.py"
