"""Part A prompts: the digit a prompt names on the MNIST model, and every prompt DeepFloyd encodes."""

from __future__ import annotations

import re

from .errors import PromptError


def prompt_to_class(prompt: str, num_classes: int = 10) -> int | None:
    """'3', 'a 3', 'the digit 3' -> 3; '' (the null prompt) -> None; anything else is an error."""
    text = prompt.strip().lower()
    if text == "":
        return None
    match = re.fullmatch(r"(?:(?:a|an|the)\s+)?(?:digit\s+|number\s+)?(\d)", text)
    if not match or int(match.group(1)) >= num_classes:
        raise PromptError(
            f"The MNIST Part A model understands only digit prompts ('3', 'a 3', 'the digit 3') "
            f"and the empty prompt, not {prompt!r}. Fix the prompt in part_a.mnist of the config."
        )
    return int(match.group(1))


def deepfloyd_prompts(config: dict) -> list[str]:
    """Every prompt Part A on DeepFloyd uses (embed_prompts encodes these plus the empty prompt)."""
    d = config["part_a"]["deepfloyd"]
    prompts = [d["generic_prompt"], *d["setup_prompts"], *d["sample_prompts"], *(e["prompt"] for e in d["text_edits"])]
    prompts += [p for e in d["anagrams"] for p in (e["upright"], e["flipped"])] + [p for e in d["hybrids"] for p in (e["low"], e["high"])]
    return list(dict.fromkeys(prompts))
