"""The booking form: which fields it has, and how a submission is checked and normalized.

Pure functions (no I/O, ``today`` passed in). Errors are i18n keys with their format values, so the
page shows each message next to its field in the patient's language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

MAX_NAME = 100
MAX_EMAIL = 254
MAX_REASON = 500
MAX_CHOICES = 3
MAX_DAYS_AHEAD = 180
TIMES = ("any", "morning", "afternoon", "evening")
VISITS = ("new", "returning")
HONEYPOT = "homepage"  # a field bots fill in; hidden from people (CSS, aria-hidden, tabindex=-1)

TEXT_FIELDS = ("name", "phone", "email", "visit", "reason", "consent", HONEYPOT)
CHOICE_FIELDS = tuple(f"{kind}{n}" for n in range(1, MAX_CHOICES + 1) for kind in ("date", "time"))
FIELDS = TEXT_FIELDS + CHOICE_FIELDS

# Control characters other than newline/tab would corrupt CSV exports and staff screens.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Invisible joiners and spaces that copy-paste brings along: a name of only these is no name.
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
# Only what people type between digits: a plain space (NFKC makes U+3000 one), hyphens, parentheses.
# Not ``\s``: it also matches CR, LF, VT, FS, NEL and U+2028, which must not reach a staff screen.
_PHONE_SEPARATORS = re.compile(r"[ \-‐‑‒–—―ー−()]")


@dataclass(frozen=True, slots=True)
class FieldError:
    key: str  # an i18n key, e.g. "err_phone_invalid"
    values: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FormResult:
    values: dict[str, str]  # what the patient typed, to show back in the form
    errors: dict[str, FieldError]  # field name -> what is wrong with it
    data: dict[str, Any] | None  # what to store, when there are no errors

    @property
    def ok(self) -> bool:
        return not self.errors


def blank_values() -> dict[str, str]:
    return dict.fromkeys(FIELDS, "")


def validate(fields: Mapping[str, str], today: date) -> FormResult:
    """Check a submission; ``today`` is the clinic's local date (preferred dates start there)."""
    values = {name: _normalized(str(fields.get(name, ""))) for name in FIELDS}
    errors: dict[str, FieldError] = {}
    name = _text(values, errors, "name", MAX_NAME, "err_name_long", required="err_name_required")
    phone = _phone(values["phone"], errors)
    email = _email(values["email"], errors)
    preferred = _choices(values, errors, today)
    if values["visit"] not in VISITS:
        errors["visit"] = FieldError("err_visit_required")
    reason = _text(values, errors, "reason", MAX_REASON, "err_reason_long", multiline=True)
    if values["consent"] != "yes":
        errors["consent"] = FieldError("err_consent_required")
    if errors:
        return FormResult(values, errors, None)
    data = {
        "name": name,
        "phone": phone,
        "phone_digits": normalize_phone(phone),
        "email": email,
        "preferred": preferred,
        "visit": values["visit"],
        "reason": reason,
        "consent": True,
    }
    return FormResult(values, {}, data)


def _normalized(text: str) -> str:
    """NFKC (full-width letters and digits become plain ones, as staff search them), without
    zero-width characters, trimmed. Control characters stay, for the checks to refuse."""
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text)).strip()


def honeypot_filled(fields: Mapping[str, str]) -> bool:
    return bool(str(fields.get(HONEYPOT, "")).strip())


def _text(
    values: dict[str, str],
    errors: dict[str, FieldError],
    name: str,
    max_len: int,
    too_long: str,
    *,
    required: str | None = None,
    multiline: bool = False,
) -> str:
    text = values[name].replace("\r\n", "\n") if multiline else values[name]
    if _CONTROL.search(text) or (not multiline and ("\n" in text or "\r" in text)):
        errors[name] = FieldError("err_text_invalid")
    elif required and not text:
        errors[name] = FieldError(required)
    elif len(text) > max_len:
        errors[name] = FieldError(too_long, {"max": max_len})
    return text


def normalize_phone(text: str) -> str | None:
    """Japanese phone number -> domestic digits (``09012345678``), or None if it is not one.

    Accepts full-width digits, hyphens of every kind, spaces, parentheses, and ``+81`` with or
    without the trunk 0 (``+81 90-…``, ``+81 (0)90-…``).
    """
    compact = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    if compact.startswith("+81"):
        compact = "0" + compact[3:].removeprefix("0")
    if not compact.isascii() or not compact.isdigit():
        return None
    # Mobile (070/080/090), IP (050) and 0800 numbers have 11 digits; the others 10.
    digits = 11 if re.match(r"^0[5789]0", compact) else 10
    if len(compact) != digits or not re.match(r"^0[1-9]", compact):
        return None
    return compact


def _phone(text: str, errors: dict[str, FieldError]) -> str:
    if not text:
        errors["phone"] = FieldError("err_phone_required")
    elif normalize_phone(text) is None:
        errors["phone"] = FieldError("err_phone_invalid")
    return text


def _email(text: str, errors: dict[str, FieldError]) -> str:
    if text and (len(text) > MAX_EMAIL or _CONTROL.search(text) or not _EMAIL.match(text)):
        errors["email"] = FieldError("err_email_invalid")
    return text


def _choices(values: dict[str, str], errors: dict[str, FieldError], today: date) -> list[dict[str, str]]:
    out = []
    for n in range(1, MAX_CHOICES + 1):
        day, time = values[f"date{n}"], values[f"time{n}"] or "any"
        if time not in TIMES:
            errors[f"time{n}"] = FieldError("err_time_invalid")
            continue
        if not day:
            if time != "any":
                errors[f"date{n}"] = FieldError("err_date_missing")
            continue
        problem = _date_problem(day, today)
        if problem:
            errors[f"date{n}"] = problem
        else:
            out.append({"date": day, "time": time})
    return out


def _date_problem(text: str, today: date) -> FieldError | None:
    try:
        day = date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        day = None
    if day is None:
        return FieldError("err_date_invalid")
    if day < today:
        return FieldError("err_date_past")
    if day > today + timedelta(days=MAX_DAYS_AHEAD):
        return FieldError("err_date_far", {"days": MAX_DAYS_AHEAD})
    return None


def date_bounds(today: date) -> tuple[str, str]:
    """The ``min``/``max`` of the date inputs: the same window ``validate`` accepts."""
    return today.isoformat(), (today + timedelta(days=MAX_DAYS_AHEAD)).isoformat()
