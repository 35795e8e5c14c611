# The static HTML writeup: every figure and table of the run -> results/report/index.html.


rule render_report:
    input:
        figures=recipes.part_b_targets(config) + recipes.part_a_targets(config, PART_A_MODEL),
        evaluation=recipes.evaluation_targets(config),
        gates="results/quality_gates.csv",
        checkpoints=[final_checkpoint(m) for m in recipes.models(config)],
        deepfloyd=[] if PART_A_MODEL == "mnist" else [DEEPFLOYD_MANIFEST],
        templates=sorted(str(p) for p in Path(workflow.basedir, "report", "templates").glob("*")),
    output:
        "results/report/index.html",
    params:
        config=config,
        part_a_model=PART_A_MODEL,
        part_a_reason=PART_A_REASON,
        template_dir=str(Path(workflow.basedir, "report", "templates")),
    log:
        "logs/report/render_report.log",
    benchmark:
        "benchmarks/report/render_report.tsv"
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/render_report.py"


# Did the run reproduce the course? Each gate (src/fundiff/gates.py) is a measured value against a
# bar of the config's quality_gates; failing gates are shown at the top of the report, they do not
# stop the run.
rule quality_gates:
    input:
        metrics=[q["outputs"]["csv"] for q in quality_models().values()],
        test_metrics=expand(
            "results/part_b/single_step/epoch_{epoch:03d}/test_metrics.csv",
            epoch=PB["single_step"]["show_epochs"],
        ),
        reference=REFERENCE,
        figures=recipes.figure_files(config, PART_A_MODEL),
        readings=["results/part_a/readings.csv"] if PART_A_MODEL == "mnist" else [],
    output:
        "results/quality_gates.csv",
    params:
        config=config,
        part_a_model=PART_A_MODEL,
    log:
        "logs/evaluation/quality_gates.log",
    benchmark:
        "benchmarks/evaluation/quality_gates.tsv"
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/quality_gates.py"
