# The static HTML writeup: every figure and table of the run -> results/report/index.html.


rule render_report:
    input:
        figures=recipes.part_b_targets(config),
        templates=sorted(str(p) for p in Path(workflow.basedir, "report", "templates").glob("*")),
    output:
        "results/report/index.html",
    params:
        config=config,
        template_dir=str(Path(workflow.basedir, "report", "templates")),
    log:
        "logs/report/render_report.log",
    localrule: True
    script:
        "../scripts/render_report.py"
