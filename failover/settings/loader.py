"""Reads the YAML config: finds the file, expands ``${VAR}``, validates, and explains errors.

Every error names the file, the key path and what is expected, and never echoes a value that
may be secret. ``portalguard config check`` and ``portalguard run`` both go through ``load``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Collection, Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from failover.actions.table import ACTIONS
from failover.mirror.config import SOURCE_TYPES
from failover.secrets_policy import SECRET_PLACEHOLDER
from failover.settings.model import Settings
from failover.settings.source import DEFAULT_FILE, ENV_VAR, REF

MAX_CONFIG_CHARS = 1 << 20
MAX_CONFIG_DEPTH = 32
MIN_SECRET_CHARS = 6  # shorter values are no secret: masking them would mangle ordinary words

# Fields whose values are never shown in an error message.
_SECRET_KEYS = {
    "password",
    "token",
    "developer_token",
    "client_secret",
    "refresh_token",
    "secret",
    "url",
    "urls",
    "data_key",
}
_PATTERN_HINTS = {
    "customer_id": "is not a customer id (use its 10 digits without dashes, e.g. 1234567890)",
    "login_customer_id": "is not a customer id (use its 10 digits without dashes, e.g. 1234567890)",
    "campaign_ids": "is not a campaign id (use its digits only, as in the Ads UI, e.g. 12345678901)",
    "phone": "is not a phone number (use digits and dashes, e.g. 03-1234-5678)",
}


class ConfigError(Exception):
    """The config cannot be used; ``messages`` are complete lines for the user."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


SITE_ENV = "PORTALGUARD_SITE"  # wins over the file's `site:` (and `run --site` over both)


def load(path: Path, environ: Mapping[str, str] | None = None, *, secrets_required: bool = True) -> Settings:
    """The validated config. ``secrets_required=False`` is for commands that only show the store: a
    ``${VAR}`` that is not set at a secret-holding key (a ``SecretStr`` field: passwords, tokens,
    notify/webhook URLs) then loads as ``SECRET_PLACEHOLDER`` instead of failing; any other missing
    variable still fails."""
    raw = _read_yaml(path)
    secret_locs = set(_secret_locs(raw, Settings, ()))
    optional = set() if secrets_required else secret_locs
    env = os.environ if environ is None else environ
    refs = _Refs(env, optional)
    expanded = refs.expand(raw, ())
    if env.get(SITE_ENV):  # one config file for every site: each machine says which it is
        expanded["site"] = env[SITE_ENV]
    if refs.missing:
        raise ConfigError(
            [
                f"{path}: {'.'.join(loc)}: environment variable {name} is not set "
                "(set it where portalguard runs, e.g. in the systemd EnvironmentFile)"
                for loc, name in refs.missing
            ]
        )
    try:
        return Settings.model_validate(expanded)
    except ValidationError as err:
        lines = explain(err, hidden=refs.from_env, redact=refs.secrets(secret_locs))
        raise ConfigError([f"{path}: {line}" for line in lines]) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: no such file (give -c FILE, set {ENV_VAR}, or create ./{DEFAULT_FILE}; "
                "config/example.yaml is a commented start)"
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{path}: cannot read: {err}"]) from None
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError([f"{path}: {len(text):,} characters is too long for a config file (at most 1 MiB)"])
    try:
        _check_shape(path, text)
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error(path, text, err)) from None
    if data is None:
        raise ConfigError([f"{path}: the file is empty (config/example.yaml is a commented start)"])
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise ConfigError([f"{path}: the top level must be a mapping (clinic:, canaries:, portals:, ...), not {kind}"])
    return data


_INDENTATION = "the indentation does not line up with the lines above (spaces only, the same number per level)"
# PyYAML's problems, in words: what to change in the file.
_YAML_WORDS = (
    ("mapping values are not allowed", 'a second colon in a value: put a value that contains ": " in quotes'),
    ("cannot start any token", "a character no value can start with (a tab? indent with spaces only)"),
    ("could not find expected ':'", "a key without its colon, or a quote not closed: write key: value"),
    ("did not find expected key", _INDENTATION),
    ("expected <block end>", _INDENTATION),
    ("expected ',' or '}'", "a { … } mapping is not closed: add the }, or a comma between its entries"),
    ("expected ',' or ']'", "a [ … ] list is not closed: add the ], or a comma between its items"),
    ("found unexpected end of stream", "the file ends inside a quote or a bracket: close it"),
    ("found undefined alias", "a * that is not a YAML alias here: put the value in quotes"),
)


def _yaml_error(path: Path, text: str, err: yaml.YAMLError) -> list[str]:
    """Where (line, column, the line itself with a caret) and what, in words."""
    mark = getattr(err, "problem_mark", None)
    problem = str(getattr(err, "problem", None) or err)
    words = next((w for p, w in _YAML_WORDS if p in problem), problem)
    if mark is None:
        return [f"{path}: invalid YAML: {words}"]
    context = getattr(err, "context_mark", None)
    if context is not None and context.line != mark.line and words != problem:
        words += f" (it begins on line {context.line + 1})"
    lines = text.splitlines()
    shown = lines[mark.line] if mark.line < len(lines) else ""
    number = str(mark.line + 1)
    return [
        f"{path}: line {number}, column {mark.column + 1}: invalid YAML: {words}",
        f"  {number} | {shown}",
        f"  {' ' * len(number)} | {' ' * mark.column}^",
    ]


def _check_shape(path: Path, text: str) -> None:
    """Refuse aliases and deep nesting before anything is built, reading the event stream (which
    PyYAML parses without recursion): a few hundred bytes of nested aliases expand to gigabytes
    (a "billion laughs"), and deep nesting would exhaust Python's recursion limit."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        mark = event.start_mark
        where = f"{path}: line {mark.line + 1}, column {mark.column + 1}"
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError([f"{where}: YAML aliases (*{event.anchor}) are not supported here: write the value out"])
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_CONFIG_DEPTH:
                raise ConfigError([f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels; no key needs that"])
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (plain YAML keeps the last silently)."""


def _unique_keys(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'duplicate key "{key}" (keep one)', key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)


class _Refs:
    """Expands ``${VAR}`` (``$$`` is a literal ``$``) and remembers what came from the environment.

    A variable that is not set is ``missing``, unless its key path is in ``optional``: it then
    expands to ``SECRET_PLACEHOLDER``.
    """

    def __init__(self, env: Mapping[str, str], optional: Collection[tuple[str, ...]] = ()) -> None:
        self.env = env
        self.optional = optional
        self.missing: list[tuple[tuple[str, ...], str]] = []  # (key path, variable) not set
        self.used: dict[str, str] = {}  # variable -> value, to keep values out of messages
        self.used_at: dict[str, set[tuple[str, ...]]] = {}  # variable -> the key paths it is used at
        self.from_env: set[tuple[str, ...]] = set()  # key paths whose value holds a variable

    def expand(self, node: Any, loc: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {k: self.expand(v, (*loc, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [self.expand(v, (*loc, str(i))) for i, v in enumerate(node)]
        if not isinstance(node, str):
            return node

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "$"
            self.from_env.add(loc)
            if name not in self.env:
                if loc in self.optional:
                    return SECRET_PLACEHOLDER
                if (loc, name) not in self.missing:
                    self.missing.append((loc, name))
                return ""
            self.used[name] = self.env[name]
            self.used_at.setdefault(name, set()).add(loc)
            return self.env[name]

        return REF.sub(sub, node)

    def secrets(self, secret_locs: Collection[tuple[str, ...]]) -> dict[str, str]:
        """The variables whose values are masked in messages: those used at a key that holds a
        secret, and long enough to be one. An ordinary word (``PORTAL_USER=staff``) is never masked:
        replacing it everywhere would hide an action named ``staff`` in the text."""
        return {
            name: value
            for name, value in self.used.items()
            if len(value) >= MIN_SECRET_CHARS
            and any(loc in secret_locs or _SECRET_KEYS.intersection(loc) for loc in self.used_at.get(name, ()))
        }


def _secret_locs(node: Any, annotation: Any, loc: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The key paths in the raw YAML ``node`` whose field (``annotation``) holds a secret."""
    annotation = _strip(annotation)
    if _is_union(annotation) and isinstance(node, dict):  # an action: its `type` picks the model
        annotation = _strip(_child(annotation, str(node.get("type"))))
    if annotation is SecretStr and isinstance(node, str):
        yield loc
    elif isinstance(node, dict):
        for key, value in node.items():
            if (child := _child(annotation, str(key))) is not None:
                yield from _secret_locs(value, child, (*loc, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if (child := _child(annotation, i)) is not None:
                yield from _secret_locs(value, child, (*loc, str(i)))


def explain(
    err: ValidationError,
    hidden: Collection[tuple[str, ...]] = (),
    redact: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per validation error: ``key.path: what is wrong``.

    Values at secret keys and at ``hidden`` key paths are never shown; any value of ``redact``
    (variable -> value) left in a message is replaced by ``${VARIABLE}``. A model validator can
    point at one of its keys by starting its message with ``key: `` (e.g. ``timeout: ...``).
    """
    lines = []
    for e in err.errors(include_url=False):
        loc = _clean_loc(e["loc"])
        secret = bool(_SECRET_KEYS.intersection(loc)) or tuple(loc) in hidden
        message = _message(e, loc, secret)
        if e["type"] == "value_error" and (sub := _SUBKEY.match(message)):
            loc, message = [*loc, *sub.group(1).split(".")], sub.group(2)
        for name, value in (redact or {}).items():
            if len(value) >= MIN_SECRET_CHARS:  # shorter values are no secret and would mangle the text
                message = message.replace(value, f"${{{name}}}")
        lines.append(f"{'.'.join(loc) or '(top level)'}: {message}")
    return lines


_SUBKEY = re.compile(r"^([a-z_][a-z0-9_-]*(?:\.[a-z0-9_-]+)*): (.+)$", re.DOTALL)
_ACTION_TYPES = tuple(ACTIONS)


def _clean_loc(loc: tuple[int | str, ...]) -> list[str]:
    # pydantic puts a union's tag (actions.NAME.google_ads.key) and dict-key markers ("[key]") in the path.
    out = [str(p) for p in loc if p != "[key]"]
    if len(out) > 2 and out[0] == "actions" and out[2] in _ACTION_TYPES:
        del out[2]
    # portals.P.mirror.source.<type>.key: the source's union tag likewise.
    if len(out) > 4 and out[0] == "portals" and out[2:4] == ["mirror", "source"] and out[4] in SOURCE_TYPES:
        del out[4]
    return out


def _message(e: dict[str, Any], loc: list[str], secret: bool) -> str:
    kind, key, value, ctx = e["type"], (loc[-1] if loc else ""), e.get("input"), e.get("ctx") or {}
    got = "" if secret else _got(value)
    if kind == "value_error":
        return str(e["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return _unknown_key(key, _allowed_keys(e["loc"][:-1]))
    types, what = (SOURCE_TYPES, "source") if key == "source" else (_ACTION_TYPES, "action")
    if kind == "union_tag_invalid":
        return f'unknown {what} type "{value.get("type")}" (use {", ".join(types)})'
    if kind == "union_tag_not_found":
        return f"needs `type:` ({', '.join(types)})"
    if kind == "string_pattern_mismatch":
        if e["loc"][-1] == "[key]":
            return _bad_name(loc, key)
        field = loc[-2] if key.isdigit() and len(loc) > 1 else key  # a list item: the list's key
        if field in _PATTERN_HINTS:
            return ("" if secret else f'"{value}" ') + _PATTERN_HINTS[field]
        return "has the wrong form" + got
    if kind == "literal_error":
        return f"must be one of {ctx['expected'].replace(chr(39), '')}" + got
    if kind in ("too_short", "string_too_short"):
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"needs at least {n} entries"
    if kind in _BOUNDS:
        word, ctx_key = _BOUNDS[kind]
        return f"must be {word} {ctx[ctx_key]}" + got
    if kind == "string_type":
        if isinstance(value, dict | list):
            return f"must be a string, not a {'mapping' if isinstance(value, dict) else 'list'}"
        return "must be a string (put the value in quotes)"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping (indented key: value lines)" + got
    if kind == "list_type":
        return "must be a list ([a, b] or lines starting with -)" + got
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number" + got
    if kind in ("float_parsing", "float_type"):
        return "must be a number" + got
    return f"{e['msg'][0].lower()}{e['msg'][1:]}" + got


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("greater than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _got(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        return ""
    if isinstance(value, bool | int | float):
        return f" (got {value})"
    return f' (got "{value}")'


def _bad_name(loc: list[str], name: str) -> str:
    parent = loc[-2] if len(loc) > 1 else ""
    if parent == "endpoints":
        return f'"{name}" is not an endpoint name (use public, admin, or public-<name> / admin-<name>)'
    what = {"portals": "portal id", "actions": "action name"}.get(parent, "name")
    return f'"{name}" is not a valid {what} (use lowercase letters, digits, - and _)'


def _unknown_key(key: str, allowed: list[str]) -> str:
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return f"unknown key ({hint}allowed: {', '.join(allowed)})"


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at the raw pydantic ``loc`` accepts, for "unknown key" hints."""
    node: Any = Settings
    for part in loc:
        node = _child(node, part)
        if node is None:
            return []
    model = _strip(node)
    return sorted(model.model_fields) if _is_model(model) else []


def _child(node: Any, part: int | str) -> Any:
    """The annotation one step down ``node`` at ``part``: a field, a dict value, a list item, a tag."""
    node = _strip(node)
    if _is_model(node):
        field = node.model_fields.get(str(part))
        return field.annotation if field else None
    args = typing.get_args(node)
    if typing.get_origin(node) is dict:
        return args[1]
    if typing.get_origin(node) is list:
        return args[0]
    for arg in args:  # a discriminated union: the member whose `type` is the tag
        tag = arg.model_fields.get("type") if _is_model(arg) else None
        if tag is not None and typing.get_args(tag.annotation) == (part,):
            return arg
    return None


def _strip(node: Any) -> Any:
    """``Annotated[X, ...]`` -> X, ``X | None`` -> X."""
    while True:
        if typing.get_origin(node) is typing.Annotated:
            node = typing.get_args(node)[0]
            continue
        args = [a for a in typing.get_args(node) if a is not type(None)]
        if _is_union(node) and len(args) == 1:
            node = args[0]
            continue
        return node


def _is_union(node: Any) -> bool:
    return typing.get_origin(node) in (typing.Union, types.UnionType)


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)
