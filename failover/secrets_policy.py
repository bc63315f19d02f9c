"""The minimum for secrets portalguard itself checks (the /staff login, webhook signing keys).

A variable that is set but blank expands to "", and a short secret is guessed: both would let anyone
in (``Authorization: Bearer`` with nothing after it once listed patients' names and phones).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, SecretStr

MIN_SECRET_CHARS = 16
# What an unset secret's ${VAR} becomes for commands that never use it (``failover.settings.loader.load``
# with ``secrets_required=False``); never shown. Long enough for the policy below.
SECRET_PLACEHOLDER = "unset-secret-not-needed-to-read"


def _long_enough(value: SecretStr) -> SecretStr:
    # The message never shows the value, only what to do.
    n = len(value.get_secret_value().strip())
    if n == 0:
        raise ValueError(
            "must not be empty (is its environment variable set but blank?); "
            "generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    if n < MIN_SECRET_CHARS:
        raise ValueError(
            f"is too short: at least {MIN_SECRET_CHARS} characters; "
            "generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    return value


Secret = Annotated[SecretStr, AfterValidator(_long_enough)]
