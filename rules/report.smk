# The static HTML writeup: every figure and table of the run -> results/report/index.html.


rule render_report:
    input:
        figures=paths.part_b_targets(config)
        + paths.part_a_targets(config, PART_A_MODEL),
        evaluation=paths.evaluation_targets(config),
        gates=paths.QUALITY_GATES,
        devices=[paths.DEVICE.format(model=m) for m in recipes.models(config)],
        benchmarks=paths.benchmark_files(config, PART_A_MODEL),
        deepfloyd=(
            [] if PART_A_MODEL == "mnist" else [paths.deepfloyd_manifest(PART_A_MODEL)]
        ),
        templates=sorted(
            str(p) for p in Path(workflow.basedir, "report", "templates").glob("*")
        ),
    output:
        paths.REPORT,
    log:
        "logs/report/render_report.log",
    benchmark:
        paths.BENCHMARKS["render_report"]
    localrule: True
    conda:
        TORCH_ENV
    params:
        # the report prints the whole config (provenance): any change re-renders it
        config=config,
        part_a_model=PART_A_MODEL,
        part_a_reason=PART_A_REASON,
        template_dir=lambda wildcards, input: str(Path(input.templates[0]).parent),
    script:
        "../scripts/render_report.py"


# Did the run reproduce the course? Each gate (src/fundiff/gates.py) is a measured value against a
# bar of the config's quality_gates; failing gates are shown at the top of the report, they do not
# stop the run.
rule quality_gates:
    input:
        metrics=[q["outputs"]["csv"] for q in quality_models().values()],
        test_metrics=paths.test_metrics_files(config),
        reference=paths.REFERENCE,
        figures=paths.figure_files(config, PART_A_MODEL),
        readings=[paths.READINGS] if PART_A_MODEL == "mnist" else [],
    output:
        paths.QUALITY_GATES,
    log:
        "logs/evaluation/quality_gates.log",
    benchmark:
        paths.BENCHMARKS["quality_gates"]
    localrule: True
    conda:
        TORCH_ENV
    params:
        # what the gates read: the bars, and the Part B models and their settings
        config=lambda wildcards: {
            k: config[k] for k in ("part_b", "quality_gates") if k in config
        },
        part_a_model=PART_A_MODEL,
    script:
        "../scripts/quality_gates.py"
