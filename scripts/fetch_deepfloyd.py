"""Rule fetch_deepfloyd: download DeepFloyd IF's fp16 weights (stage I with T5, stage II) and write a manifest."""

import logging
import sys

from fundiff import deepfloyd
from fundiff.scriptutil import finish, setup

setup(snakemake.log[0])
p = snakemake.params
try:
    # the token is read here and handed to the hub client only: never logged, never in the manifest
    manifest = deepfloyd.fetch(p.repos, cache_dir=p.cache_dir, token=deepfloyd.hub_token())
except deepfloyd.DeepFloydAccessError as err:
    logging.getLogger("fundiff").error("%s", err)
    print(f"\nfetch_deepfloyd: {err}\n", file=sys.__stderr__)
    sys.exit(1)
deepfloyd.write_manifest(manifest, snakemake.output[0])
finish()
