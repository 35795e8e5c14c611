"""The errors of a config that JSON Schema accepts but the workflow cannot run (torch-free)."""


class ConfigError(ValueError):
    """A config value the workflow cannot use; the message names the key and the fix."""


class PromptError(ConfigError):
    """A Part A prompt the chosen model cannot read."""
