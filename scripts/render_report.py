"""Rule render_report: the static HTML writeup of the run under results/report/."""

import shutil
from pathlib import Path

from fundiff import paths
from fundiff.report import Assets, render
from fundiff.report_context import build_context
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
out = Path(snakemake.output[0])
report_dir = out.parent
shutil.rmtree(report_dir / "assets", ignore_errors=True)
asset = Assets(report_dir, Path(paths.RESULTS))
context = build_context(snakemake.input, snakemake.params, asset, repo=Path(snakemake.scriptdir).parent)
shutil.copyfile(Path(snakemake.params.template_dir) / "style.css", report_dir / "style.css")
render(snakemake.params.template_dir, "index.html.j2", context, out)
finish()
