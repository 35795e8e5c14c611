"""The config files of a run, read again strictly (torch-free: rules/common.smk calls it at DAG build).

Snakemake reads config/config.yaml and every --configfile with PyYAML, which keeps the last of
two equal keys without a word and reads `1e-4` (no dot: YAML 1.1) as the string '1e-4'. Here
each file is read again: a key given twice, a tab, an empty file, a top level that is not a
mapping, a non-string key or a Python tag raise ConfigFileError naming the file, the line and the
key; floats written `1e-4` or `1.0e4` are put into the merged config as floats. A UTF-8 BOM and
CRLF line ends are fine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml


class ConfigFileError(ValueError):
    """A config file YAML reads wrong, or not at all; the message names the file, the line and the key."""


# YAML 1.2 floats with an exponent that PyYAML's YAML 1.1 rule misses: 1e-4, 1E5, 1.0e4, .5e-3
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-4-style floats as floats."""


StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))

_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"


def _name(path: list[str]) -> str:
    return "".join(p if p.startswith("[") else f".{p}" for p in path).lstrip(".") or "the top level"


def _check_keys(node, where: str, path: list[str], seen_nodes: set[int]) -> None:
    """Every mapping key a string, given once (merge keys `<<` aside)."""
    if id(node) in seen_nodes:  # an alias seen before
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            line = key_node.start_mark.line + 1
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR):
                raise ConfigFileError(f"{where}, line {line}: key {getattr(key_node, 'value', '?')!r} under {_name(path)} is read as "
                                      f"{key_node.tag.rsplit(':', 1)[-1]}, not text (yes, no, on, off and numbers are not names); quote it.")
            key = key_node.value
            if key in lines:
                raise ConfigFileError(f"{where}: {_name(path + [key])} is given twice (lines {lines[key]} and {line}); YAML would keep "
                                      "the last one without a word. Delete one of them.")
            lines[key] = line
            _check_keys(value_node, where, path + [key], seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(item, where, path + [f"[{i}]"], seen_nodes)


def _json_pairs(where: str):
    def hook(pairs):
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ConfigFileError(f"{where}: key {twice[0]!r} is given twice in one object; JSON readers keep the last one without a word. Delete one of them.")
        return dict(pairs)

    return hook


def load(path: str | Path) -> dict:
    """One config file, read strictly (see the module's docstring); raises ConfigFileError."""
    where = f"config file {path}"
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")  # a BOM is fine; CRLF too (YAML reads it)
    except FileNotFoundError as err:
        raise ConfigFileError(f"{where} does not exist.") from err
    except UnicodeDecodeError as err:
        raise ConfigFileError(f"{where} is not UTF-8 text ({err}). Save it as UTF-8.") from err
    if text.lstrip().startswith("{"):  # Snakemake reads JSON first
        try:
            doc = json.loads(text, object_pairs_hook=_json_pairs(where))
        except json.JSONDecodeError:
            doc = None
        else:
            return _mapping(doc, where)
    try:
        loader = StrictLoader(text)
        try:
            node = loader.get_single_node()
            yte = isinstance(node, yaml.MappingNode) and any(k.value == "__use_yte__" for k, _ in node.value)
            if node is not None and not yte:  # a YTE template (Snakemake renders it) may repeat its ?if keys
                _check_keys(node, where, [], set())
            doc = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if mark is None:
            raise ConfigFileError(f"{where} is not valid YAML: {err}") from err
        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        if "\t" in line[: mark.column + 1]:
            raise ConfigFileError(f"{where}, line {mark.line + 1}: a tab in {line.strip()!r}; YAML allows only spaces for indentation "
                                  "and after ':'. Replace the tab by spaces.") from err
        hint = " (a value holding ': ' needs quotes)" if "mapping values" in str(err.problem) else ""
        raise ConfigFileError(f"{where}, line {mark.line + 1}, column {mark.column + 1}: {err.problem} "
                              f"(in {line.strip()!r}). Fix the YAML there{hint}.") from err
    except yaml.YAMLError as err:
        raise ConfigFileError(f"{where} is not valid YAML: {err}") from err
    return _mapping(doc, where)


def _mapping(doc, where: str) -> dict:
    if doc is None:
        raise ConfigFileError(f"{where} is empty (or only comments): it must be a mapping of keys such as seed, part_b and part_a (see config/config.yaml).")
    if not isinstance(doc, dict):
        raise ConfigFileError(f"{where} holds a {type(doc).__name__} at the top level: it must be a mapping of keys such as seed, part_b "
                              "and part_a (see config/config.yaml); remove the leading '- ' or brackets.")
    return doc


def _put_floats(config, doc) -> None:
    """Where the strict reading has a float and Snakemake's config the same number as a string, put the float."""
    if isinstance(doc, dict) and isinstance(config, dict):
        items = [(k, v) for k, v in doc.items() if k in config]
    elif isinstance(doc, list) and isinstance(config, list) and len(doc) == len(config):
        items = list(enumerate(doc))
    else:
        return
    for key, value in items:
        have = config[key]
        if isinstance(value, float) and isinstance(have, str) and EXPONENT_FLOAT.match(have.strip()):
            config[key] = float(have.strip().replace("_", ""))
        else:
            _put_floats(have, value)


def check(config: dict, paths) -> None:
    """Read every config file in `paths` strictly (ConfigFileError on the first problem) and put
    their 1e-4-style floats into `config`, Snakemake's merged config, in place."""
    for path in paths:
        doc = load(path)
        if "__use_yte__" not in doc:  # a YTE template: Snakemake renders it, we leave it alone
            _put_floats(config, doc)
