"""Rule noising_grid: test digits at every sigma, z = x + sigma eps (Part B 1.1)."""

import torch

from fundiff import data, figures, part_b
from fundiff.scriptutil import finish, setup
from fundiff.seeds import stream_seed

setup(snakemake.log[0])
p = snakemake.params
images, _ = data.load_split(p.data_root, "test", limit=p.num_digits)
generator = torch.Generator().manual_seed(stream_seed(p.seed, "part_b/noising"))
rows = part_b.noising_rows(data.to_float(images), p.sigmas, generator)
figures.image_table(
    rows, snakemake.output[0],
    row_labels=[f"test image {i + 1}" for i in range(len(rows))],
    col_labels=[f"σ = {s:g}" for s in p.sigmas],
)
finish()
