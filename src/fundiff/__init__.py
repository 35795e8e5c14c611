"""fun-with-diffusion: models, samplers and helpers behind the Snakemake pipeline."""

__version__ = "0.1.0"
