"""The login probe: staff can still log into the portal's admin side.

GET the login page, fill its form (hidden inputs such as CSRF tokens kept, cookies carried),
POST the credentials, follow the redirects, and require the texts only a logged-in page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

from watchdog.probes.errors import ProbeFailure, Trace, guarded
from watchdog.probes.fetch import Browser, Page
from watchdog.probes.http import check_page, quote
from watchdog.result import FailureKind, ProbeResult
from watchdog.targets import Endpoint, Expect, Login, ProbeSettings


@dataclass(slots=True)
class Form:
    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    has_password: bool = False


async def probe_login(
    client: httpx.AsyncClient, endpoint: Endpoint, timeout: float, settings: ProbeSettings
) -> ProbeResult:
    """Log in with ``endpoint.login``; fail with ``login`` unless the final page shows success."""
    if endpoint.login is None:
        raise ValueError("probe_login needs an endpoint with a login section")

    async def check(trace: Trace) -> None:
        await log_in(Browser(client, endpoint, settings, trace), endpoint)

    return await guarded(timeout, check)


async def log_in(browser: Browser, endpoint: Endpoint) -> Page:
    """Log ``browser`` in with ``endpoint.login`` and return the page the login led to.

    The one login flow of the project: the login probe checks it, the appointment mirror's staff
    session (``failover.mirror.session``) reads the admin screens through the cookies it leaves.
    Raises ``ProbeFailure`` (or a network exception) when staff could not log in.
    """
    login = endpoint.login
    if login is None:
        raise ValueError("log_in needs an endpoint with a login section")
    page = await browser.fetch("GET", endpoint.url)
    check_page(page, endpoint.expect)
    form = find_login_form(page.text, login.password_field)
    if form is None:
        raise ProbeFailure(FailureKind.LOGIN, "no form on the login page")
    target = page.url.join(login.form_action or form.action)
    # Credentials go only where a redirect could go: the endpoint's host or an allowed one.
    browser.require_allowed(target, "login form posts to")
    landed = await browser.fetch("POST", target, data=_fields(form, login))
    check_logged_in(landed, login, endpoint.expect)
    return landed


def _fields(form: Form, login: Login) -> dict[str, str]:
    return {
        **form.hidden,
        login.username_field: login.username,
        login.password_field: login.password.get_secret_value(),
    }


def check_logged_in(page: Page, login: Login, expect: Expect) -> None:
    """Raise ``ProbeFailure`` unless ``page`` is what a successful login leads to."""
    found = next((text for text in expect.not_contains if text in page.text), None)
    if found is not None:
        raise ProbeFailure(FailureKind.MAINTENANCE, f"maintenance text {quote(found)} found after login")
    if page.status >= 500:
        raise ProbeFailure(FailureKind.HTTP_STATUS, f"HTTP {page.status} after login")
    missing = next((text for text in login.success_contains if text not in page.text), None)
    if missing is not None:
        raise ProbeFailure(FailureKind.LOGIN, f"login not accepted: missing text {quote(missing)}")


def find_login_form(html: str, password_field: str) -> Form | None:
    """The first form with a password input, else the first form; None if there is no form.

    Preferring the password form skips the search boxes many portals put in their header.
    """
    parser = _FormParser(password_field)
    parser.feed(html)
    parser.close()
    return next((form for form in parser.forms if form.has_password), parser.forms[0] if parser.forms else None)


class _FormParser(HTMLParser):
    def __init__(self, password_field: str) -> None:
        super().__init__(convert_charrefs=True)
        self._password_field = password_field
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._open = Form(action=attributes.get("action", ""))
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None:
            self._input(self._open, attributes)

    def _input(self, form: Form, attributes: dict[str, str]) -> None:
        kind = attributes.get("type", "text").lower()
        name = attributes.get("name", "")
        if kind == "password" or name == self._password_field:
            form.has_password = True
        elif kind == "hidden" and name:
            form.hidden[name] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None
