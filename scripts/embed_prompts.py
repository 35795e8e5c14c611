"""Rule embed_prompts: T5 embeddings [1, 77, d] of every Part A prompt and of "", computed once."""

import logging
import sys

from fundiff import deepfloyd
from fundiff.io import save_torch
from fundiff.scriptutil import finish, setup

p = snakemake.params
runtime = setup(snakemake.log[0], snakemake.threads, p.device, p.precision)
manifest = deepfloyd.read_manifest(snakemake.input.manifest)
try:
    embeds = deepfloyd.encode_prompts(manifest, list(p.prompts), runtime.device)
except deepfloyd.DeepFloydAccessError as err:
    logging.getLogger("fundiff").error("%s", err)
    print(f"\nembed_prompts: {err}\n", file=sys.__stderr__)
    sys.exit(1)
logging.getLogger("fundiff").info("encoded %d prompts (with the empty one), each %s", len(embeds), tuple(embeds[""].shape))
save_torch(embeds, snakemake.output[0])
finish()
