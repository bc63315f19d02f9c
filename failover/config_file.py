"""Reads the YAML config: finds the file, expands ``${VAR}``, validates, and explains errors.

Every error names the file, the key path and what is expected, and never echoes a value that
may be secret. ``portalguard config check`` and ``portalguard run`` both go through ``load``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from failover.settings import Settings

ENV_VAR = "PORTALGUARD_CONFIG"
DEFAULT_FILE = "portalguard.yaml"
_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

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
}
_PATTERN_HINTS = {
    "customer_id": "must be 10 digits without dashes (e.g. 1234567890)",
    "login_customer_id": "must be 10 digits without dashes (e.g. 1234567890)",
    "phone": "is not a phone number (use digits and dashes, e.g. 03-1234-5678)",
}


class ConfigError(Exception):
    """The config cannot be used; ``messages`` are complete lines for the user."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


def config_path(option: str | None) -> Path:
    """``-c FILE``, else ``$PORTALGUARD_CONFIG``, else ``./portalguard.yaml``."""
    return Path(option or os.environ.get(ENV_VAR) or DEFAULT_FILE)


def load(path: Path, environ: dict[str, str] | None = None) -> Settings:
    raw = _read_yaml(path)
    expanded = _expand(raw, os.environ if environ is None else environ, path.name, ())
    try:
        return Settings.model_validate(expanded)
    except ValidationError as err:
        raise ConfigError([f"{path.name}: {line}" for line in explain(err)]) from None


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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{path.name}: {where}invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path.name}: must be a YAML mapping with clinic:, canaries: and portals:"])
    return data


def _expand(node: Any, env: dict[str, str] | os._Environ[str], fname: str, loc: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v, env, fname, (*loc, str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env, fname, (*loc, str(i))) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in env:
            raise ConfigError([f"{fname}: {'.'.join(loc)}: environment variable {name} is not set"])
        return env[name]

    return _REF.sub(sub, node)


def explain(err: ValidationError) -> list[str]:
    """One line per validation error: ``key.path: what is wrong``."""
    lines = []
    for e in err.errors(include_url=False):
        loc = _clean_loc(e["loc"])
        lines.append(f"{'.'.join(loc) or '(top level)'}: {_message(e, loc)}")
    return lines


def _clean_loc(loc: tuple[int | str, ...]) -> list[str]:
    # pydantic puts a union's tag ("google_ads") and dict-key markers ("[key]") in the path.
    tags = {"fallback_page", "google_ads", "notify", "webhook", "[key]"}
    out = [str(p) for i, p in enumerate(loc) if not (str(p) in tags and i > 0 and loc[0] == "actions") and p != "[key]"]
    return out


def _message(e: dict[str, Any], loc: list[str]) -> str:
    kind, key, value = e["type"], (loc[-1] if loc else ""), e.get("input")
    if kind == "value_error":
        return str(e["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "union_tag_invalid":
        return f"unknown action type {value.get('type')!r} (use fallback_page, google_ads, notify, webhook)"
    if kind == "union_tag_not_found":
        return "needs `type:` (fallback_page, google_ads, notify, webhook)"
    if kind == "string_pattern_mismatch":
        if e["loc"][-1] == "[key]":
            return f'"{key}" is not a valid name (use lowercase letters, digits, - and _)'
        return _PATTERN_HINTS.get(key, f"has the wrong form ({e['msg'].lower()})")
    if kind == "literal_error":
        return f"must be one of {e['ctx']['expected']}" + _shown(key, value)
    return f"{e['msg'][0].lower()}{e['msg'][1:]}" + _shown(key, value)


def _shown(key: str, value: Any) -> str:
    if key in _SECRET_KEYS or isinstance(value, dict | list) or value is None:
        return ""
    return f' (got "{value}")'


def _allowed_keys(loc: list[str]) -> list[str]:
    """The keys the model at ``loc`` accepts, for "unknown key" hints."""
    model: Any = Settings
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part)
        if field is None:  # a dict key (portal id, action name): step into the dict's value type
            continue
        model = _model_of(field.annotation)
    return sorted(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _model_of(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(args):  # dict[str, X] -> X; X | None -> X
        found = _model_of(arg)
        if found is not None:
            return found
    return None
