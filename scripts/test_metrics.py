"""Rule test_metrics: MSE / PSNR / SSIM of the denoiser on the MNIST test split, per sigma."""

import torch

from fundiff import data, part_b, seeds, train
from fundiff.io import atomic_path
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = train.build_model(state, runtime).eval()
images = data.to_float(data.load_split(p.data_root, "test", limit=p.test_limit)[0])
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_b/test_metrics"))
table = part_b.test_metrics(model, images, p.sigmas, runtime, generator, full_sigma=p.train_sigma, other_limit=p.off_sigma_images)
table.insert(0, "epoch", state["epoch"])
with atomic_path(snakemake.output[0]) as tmp:
    table.to_csv(tmp, index=False, float_format="%.6g")
finish()
