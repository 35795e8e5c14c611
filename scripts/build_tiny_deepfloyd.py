"""Rule build_tiny_deepfloyd: tiny random IF pipelines saved under the real repo ids in a Hugging Face cache layout."""

from fundiff import deepfloyd
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
p = snakemake.params
manifest = deepfloyd.build_tiny(p.cache_dir, p.repos, p.seed)
deepfloyd.write_manifest(manifest, snakemake.output[0])
finish()
