"""Rule denoise_examples: clean, noisy (training sigma) and denoised test digits after one epoch."""

import torch

from fundiff import data, figures, part_b, seeds, train
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = train.build_model(state, runtime).eval()
clean = data.to_float(data.load_split(p.data_root, "test", limit=p.num_digits)[0])
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_b/denoise_examples"))
noisy = part_b.add_noise(clean, p.sigma, generator)
denoised = part_b.denoise(model, noisy, runtime)
figures.image_table(
    [clean[:, :1], noisy, denoised],
    snakemake.output[0],
    row_labels=["clean", f"noisy σ={p.sigma:g}", "denoised"],
    title=f"single-step denoiser after epoch {state['epoch']}",
)
finish()
