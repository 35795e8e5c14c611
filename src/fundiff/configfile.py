"""The config files of a run, read again strictly (torch-free: rules/common.smk calls it at DAG build).

Snakemake reads config/config.yaml and every --configfile with PyYAML, which keeps the last of
two equal keys without a word and reads `1e-4` (no dot: YAML 1.1) as the string '1e-4'. Here
each file is read again: a key given twice, a tab, an empty file, a top level that is not a
mapping, a non-string key or a Python tag raise ConfigFileError naming the file, the line and the
key; floats written `1e-4` or `1.0e4` are put into the merged config as floats. A UTF-8 BOM and
CRLF line ends are fine.
"""

from __future__ import annotations

import difflib
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


# ---------------------------------------------------------------- the merged config against config/schema.yaml


def load_schema(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _flat(node, root: dict) -> list[dict]:
    """A schema node and every node it stands for ($ref, allOf), flattened into one list."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if not isinstance(n, dict):
            continue
        out.append(n)
        if "$ref" in n:
            target = root
            for part in n["$ref"].lstrip("#/").split("/"):
                target = target[part]
            stack.append(target)
        stack.extend(n.get("allOf", []))
    return out


def _at(root: dict, path) -> list[dict]:
    """The flattened schema nodes of the config value at `path` (keys and list indices)."""
    nodes = _flat(root, root)
    for step in path:
        if isinstance(step, int):
            subs = [n["items"] for n in nodes if isinstance(n.get("items"), dict)]
        else:
            subs = [n["properties"][step] for n in nodes if step in n.get("properties", {})]
        nodes = [m for s in subs for m in _flat(s, root)]
    return nodes


def _types(nodes: list[dict]) -> set[str]:
    types = set()
    for n in nodes:
        t = n.get("type")
        types |= {t} if isinstance(t, str) else set(t or ())
        if "enum" in n:
            types |= {"string" if isinstance(v, str) else "other" for v in n["enum"]}
    return types


_PY = {"boolean": (bool,), "null": (type(None),), "array": (list,), "object": (dict,), "string": (str,)}


def _is(value, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _PY.get(kind, ()))


def coerce_text(config: dict, schema: dict, given=None) -> dict:
    """Snakemake passes the values inside a `--config key='{...}'` dictionary as text ('7.0', '0',
    'true', 'null'): where the schema allows no text at that place, read the text as YAML and keep
    the result when its type is one the schema allows. `given`: the command line's `--config`
    values (only those are read again: a value quoted in a config file stays as written); None
    reads every text value. In place; returns `config`."""

    def read(value, path):
        types = _types(_at(schema, path))
        if types and "string" not in types:
            try:
                parsed = yaml.load(value, Loader=StrictLoader)
            except yaml.YAMLError:
                return value
            if any(_is(parsed, t) for t in types):
                return parsed
        return value

    def walk(value, mask, path):
        if isinstance(value, dict) and isinstance(mask, dict):
            for k in list(value):
                if k in mask:
                    value[k] = walk(value[k], mask[k], path + [k])
        elif isinstance(value, list) and (mask is ALL or isinstance(mask, list) and len(mask) == len(value)):
            for i in range(len(value)):
                value[i] = walk(value[i], ALL if mask is ALL else mask[i], path + [i])
        elif isinstance(value, str) and (mask is ALL or mask == value):
            return read(value, path)
        return value

    return walk(config, ALL if given is None else _plain(given), [])


class _All(dict):
    """The mask that matches everything below it."""

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return self


ALL = _All()


def _plain(value):
    """Snakemake's --config values (immutable maps) as plain dicts and lists."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _dotted(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _range(nodes: list[dict]) -> str:
    low = next(((n[k], k) for n in nodes for k in ("minimum", "exclusiveMinimum") if k in n), None)
    high = next(((n[k], k) for n in nodes for k in ("maximum", "exclusiveMaximum") if k in n), None)
    parts = []
    if low:
        parts.append(f"{'at least' if low[1] == 'minimum' else 'above'} {low[0]}")
    if high:
        parts.append(f"{'at most' if high[1] == 'maximum' else 'below'} {high[0]}")
    return " and ".join(parts)


def explain(error, schema: dict) -> str:
    """One short paragraph for a jsonschema ValidationError of the merged config: where, what, and
    the fix (the closest valid key for an unknown one, the allowed range for a number out of it),
    instead of jsonschema's dump of the whole schema and config."""
    path = list(error.absolute_path)
    where = _dotted(path) or "the top level"
    nodes = _at(schema, path)
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        allowed = sorted({k for n in nodes for k in n.get("properties", {})})
        lines = []
        for key in [k for k in error.instance if k not in allowed]:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown key {_dotted(path + [key])!r}{hint}")
        return (f"{'; '.join(lines)}. The keys allowed under {where} are: {', '.join(allowed)} "
                f"(config/README.md describes each). [{error.message}]")
    found = f"{where} is {error.instance!r}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{found}: {error.message}; {where} must be {_range(nodes)}."
    if error.validator == "type":
        bounds = _range(nodes)
        return f"{found}: {error.message}" + (f"; it must be a {' or '.join(_types(nodes) - {'null'})} {bounds}" if bounds else "") + "."
    return f"{found}: {error.message}."


def main(argv=None) -> int:
    """`python -m fundiff.configfile FILE...`: read each config file strictly and name the first
    slip of each with its line. Snakemake reads `--configfile` files itself before any workflow
    code runs, and for a tab, a YAML syntax error, an empty file or a top-level list it says only
    "Config file is not valid JSON or YAML" or "... with keys at top level", naming no file."""
    import sys

    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m fundiff.configfile FILE [FILE...]", file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        try:
            load(path)
        except ConfigFileError as err:
            print(err)
            bad += 1
        else:
            print(f"config file {path}: read fine (the schema is checked when Snakemake builds the DAG)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
