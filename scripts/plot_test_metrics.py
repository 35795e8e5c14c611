"""Rule plot_test_metrics: test-set MSE of the denoiser against sigma, one line per epoch."""

import pandas as pd

from fundiff import figures
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
table = pd.concat([pd.read_csv(f) for f in snakemake.input])
noisy = table[(table.image == "noisy input") & (table.epoch == table.epoch.min())].sort_values("sigma")
# log axis: the noisy input at sigma 0 is the clean image itself (MSE 0), left out of its line
ys = {"noisy input (clipped to [0, 1])": [m if m > 0 else float("nan") for m in noisy.mse]}
sigmas = sorted(table.sigma.unique())
for epoch, part in table[table.image == "denoised"].groupby("epoch"):
    ys[f"denoised, epoch {epoch}"] = part.sort_values("sigma").mse.tolist()
figures.line_plot(sigmas, ys, snakemake.output[0], "σ of the test noise", "MSE to the clean test image", "single-step denoiser on the MNIST test split", logy=True)
finish()
