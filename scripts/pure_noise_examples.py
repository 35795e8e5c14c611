"""Rule pure_noise_examples: what the denoiser trained on pure noise outputs, beside the mean training image."""

import pandas as pd
import torch
import torch.nn.functional as F

from fundiff import data, figures, part_b, seeds, train
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = train.build_model(state, runtime).eval()
mean = part_b.mean_image(data.to_float(data.load_split(p.data_root, "train", limit=p.train_limit)[0]))
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_b/pure_noise/examples"))
noise = torch.randn((max(p.num_digits, 100), 1, 28, 28), generator=generator)
outputs = part_b.denoise(model, noise, runtime)
k = p.num_digits
figures.image_table(
    [noise[:k], outputs[:k], mean],
    snakemake.output.png,
    row_labels=["input: pure noise", "output", "mean train image"],
    title=f"denoiser trained on pure noise, epoch {state['epoch']}",
)
table = pd.DataFrame(
    [{
        "epoch": state["epoch"],
        "num_inputs": noise.shape[0],
        "mse_output_to_mean_image": F.mse_loss(outputs, mean.expand_as(outputs)).item(),
        "mean_pixel_std_across_outputs": outputs.std(dim=0).mean().item(),
    }]
)
with atomic_path(snakemake.output.csv) as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
finish()
