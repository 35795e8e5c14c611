"""Rule render_report: the static HTML writeup of the run under results/report/."""

from pathlib import Path

import pandas as pd

from fundiff import recipes
from fundiff.report import Assets, benchmark_table, html_table, provenance, render
from fundiff.scriptutil import setup

setup(snakemake.log[0])
config = snakemake.params.config
out = Path(snakemake.output[0])
report_dir = out.parent
if (report_dir / "assets").exists():
    import shutil

    shutil.rmtree(report_dir / "assets")
asset = Assets(report_dir, Path("results"))
pb = config["part_b"]
root = Path("results/part_b")


def epoch_dir(model, e):
    return root / model / f"epoch_{e:03d}"


def csv_table(path):
    return html_table(pd.read_csv(path))


ss, tc, cc, dd = pb["single_step"], pb["time_cond"], pb["class_cond"], pb["ddpm"]
final_ss = ss["show_epochs"][-1]
metrics = pd.concat([pd.read_csv(epoch_dir("single_step", e) / "test_metrics.csv") for e in ss["show_epochs"]])
context = {
    "cfg": config,
    "fmt_gamma": recipes.fmt_gamma,
    "single_step": {
        "noising": asset(root / "single_step/noising_grid.png"),
        "loss": asset(root / "single_step/loss_curve.png"),
        "losses": csv_table(root / "single_step/losses.csv"),
        "denoised": [(e, asset(epoch_dir("single_step", e) / "denoised.png")) for e in ss["show_epochs"]],
        "ood": [(e, asset(epoch_dir("single_step", e) / "ood.png")) for e in ss["show_epochs"]],
        "mse_plot": asset(root / "single_step/test_mse.png"),
        "metrics": html_table(metrics.pivot_table(index=["epoch", "sigma"], columns="image", values=["mse", "psnr_db", "ssim"]).round(4).reset_index().set_axis(
            ["epoch", "σ", "MSE denoised", "MSE noisy", "PSNR denoised (dB)", "PSNR noisy (dB)", "SSIM denoised", "SSIM noisy"], axis=1)),
        "num_test": int(metrics.num_images.iloc[0]),
    },
    "time_cond": {
        "loss": asset(root / "time_cond/loss_curve.png"),
        "losses": csv_table(root / "time_cond/losses.csv"),
        "samples": [(e, asset(epoch_dir("time_cond", e) / "samples.png")) for e in tc["show_epochs"]],
        "gif": asset(root / "time_cond/sampling.gif"),
    },
    "class_cond": {
        "loss": asset(root / "class_cond/loss_curve.png"),
        "losses": csv_table(root / "class_cond/losses.csv"),
        "samples": [(e, asset(epoch_dir("class_cond", e) / f"samples_cfg{recipes.fmt_gamma(cc['guidance'])}.png")) for e in cc["show_epochs"]],
        "sweep": [(g, asset(epoch_dir("class_cond", cc["epochs"]) / f"samples_cfg{recipes.fmt_gamma(g)}.png")) for g in cc["guidance_sweep"]],
        "gif": asset(root / "class_cond/sampling.gif"),
    },
    "timings": html_table(benchmark_table(Path("benchmarks")), "{:.1f}"),
    "prov": provenance(config, Path.cwd(), Path(snakemake.scriptdir).parent),
}
(report_dir / "style.css").write_text((Path(snakemake.params.template_dir) / "style.css").read_text())
render(snakemake.params.template_dir, "index.html.j2", context, out)
