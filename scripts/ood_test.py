"""Rule ood_test: the sigma-trained denoiser on the same digits at every sigma (Part B 1.2.2)."""

import torch

from fundiff import data, figures, part_b, seeds, train
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
state = train.load_checkpoint(snakemake.input.checkpoint)
model = train.build_model(state, runtime).eval()
clean = data.to_float(data.load_split(p.data_root, "test", limit=p.num_digits)[0])
# same stream as the noising grid: the noisy rows here are the ones shown there
generator = torch.Generator().manual_seed(seeds.stream_seed(p.seed, "part_b/noising"))
rows = part_b.ood_rows(model, clean, p.sigmas, runtime, generator)
labels = [f"test image {i + 1}\n{kind}" for i in range(len(clean)) for kind in ("noisy", "denoised")]
figures.image_table(
    rows, snakemake.output[0], row_labels=labels, col_labels=[f"σ = {s:g}" for s in p.sigmas],
    title=f"trained at σ = {state['recipe']['sigma']:g}, epoch {state['epoch']}",
)
finish()
