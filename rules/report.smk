# The static HTML writeup: every figure and table of the run -> results/report/index.html.


rule render_report:
    input:
        figures=recipes.part_b_targets(config) + recipes.part_a_targets(config, PART_A_MODEL),
        evaluation=recipes.evaluation_targets(config),
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
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/render_report.py"
