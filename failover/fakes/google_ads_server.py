"""A local fake of the Google Ads API for tests and the demo, driven by the real ``google-ads`` client.

It serves, on 127.0.0.1 port 0:

- gRPC over TLS: ``GoogleAdsService.Search`` (GAQL ``FROM campaign``, filtered by
  ``campaign.id IN (…)`` or ``campaign.id = …``) and ``CampaignService.MutateCampaigns`` (status
  updates, atomic, honouring ``validate_only``), checking the developer token, the OAuth bearer
  token and the customer id like the real API does, and failing with the real API's
  ``GoogleAdsFailure`` trailing metadata;
- an OAuth 2.0 token endpoint over HTTPS (``token_uri``) that trades the refresh token for an
  access token, so the client's refresh path runs unchanged.

Both use one self-signed certificate for ``localhost``/``127.0.0.1``, generated once per process:
gRPC reads ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` only once, so every fake in a process must share it.

Use it as a context manager::

    with FakeGoogleAds(campaigns={"111": ("PAUSED", 3000)}) as ads:
        cfg = ads.action_config(max_daily_budget=5000)   # a `google_ads` action config (dict)
        ads.status("111")                                 # "PAUSED"
        ads.fail_next("UNAVAILABLE", n=2)                 # see FAULTS
        ads.mutations()                                   # real (not validate-only) mutates
        ads.set("222", status="ENABLED"); ads.remove("222")  # edits "in the Ads UI"
        ads.calls_of("MutateCampaigns")                   # the call log (validate_only, statuses)

or standalone: ``python -m failover.fakes.google_ads_server`` prints the endpoint, CA file and an
action config, then serves (and prints each call) until interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import itertools
import json
import re
import shutil
import signal
import ssl
import tempfile
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import import_module
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self

import grpc

from failover.fakes.selfsigned import self_signed

DEVELOPER_TOKEN = "fake-developer-token-0123456789"
CLIENT_ID = "fake-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "fake-client-secret-abcdef"
REFRESH_TOKEN = "1//fake-refresh-token-xyz"
CUSTOMER_ID = "1234567890"

# kind -> (gRPC status, Ads error field, Ads error enum name). An error field of None fails the
# call with the bare status, as Google's front ends do for outages.
FAULTS: dict[str, tuple[grpc.StatusCode, str | None, str | None]] = {
    "UNAVAILABLE": (grpc.StatusCode.UNAVAILABLE, None, None),
    "RESOURCE_EXHAUSTED": (grpc.StatusCode.RESOURCE_EXHAUSTED, "quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED"),
    "INTERNAL": (grpc.StatusCode.INTERNAL, "internal_error", "TRANSIENT_ERROR"),
    "CONCURRENT_MODIFICATION": (grpc.StatusCode.ABORTED, "database_error", "CONCURRENT_MODIFICATION"),
    "AUTHENTICATION": (grpc.StatusCode.UNAUTHENTICATED, "authentication_error", "OAUTH_TOKEN_REVOKED"),
    "AUTHORIZATION": (grpc.StatusCode.PERMISSION_DENIED, "authorization_error", "USER_PERMISSION_DENIED"),
    "DEADLINE": (grpc.StatusCode.DEADLINE_EXCEEDED, None, None),  # hangs until the client gives up
}
TOKEN_FAULTS = ("INVALID_GRANT",)  # answered by the OAuth token endpoint
_HANG_LIMIT = 30.0  # a hanging call ends by itself after this, should a client pass no deadline


@dataclass(slots=True)
class FakeCampaign:
    status: str  # ENABLED | PAUSED | REMOVED
    budget: float  # daily budget, account currency units


@dataclass(frozen=True, slots=True)
class Call:
    """One call the fake answered (or failed)."""

    method: str  # Search | MutateCampaigns | token
    customer_id: str = ""
    validate_only: bool = False
    statuses: dict[str, str] = field(default_factory=dict)  # campaign id -> requested status
    query: str = ""
    error: str | None = None  # the injected fault or the Ads error answered; None if it succeeded
    request_id: str = ""


class _AdsAbort(Exception):
    """Fail the current call with a GoogleAdsFailure (raised inside handlers)."""

    def __init__(self, code: grpc.StatusCode, error: str, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.error, self.name, self.message = code, error, name, message


# -- the certificate ----------------------------------------------------------------------------

_cert_lock = threading.Lock()
_cert: tuple[bytes, bytes, str] | None = None  # (key PEM, cert PEM, cert path)


def _certificate() -> tuple[bytes, bytes, str]:
    """One self-signed cert per process (see the module docstring for why not one per fake)."""
    global _cert
    with _cert_lock:
        if _cert is None:
            made = self_signed("localhost")
            key, cert = made.key_pem, made.cert_pem
            folder = tempfile.mkdtemp(prefix="fake-google-ads-")
            atexit.register(shutil.rmtree, folder, True)
            path = Path(folder, "ca.pem")
            path.write_bytes(cert)
            _cert = (key, cert, str(path))
        return _cert


# -- the fake -----------------------------------------------------------------------------------


class FakeGoogleAds:
    """In-memory campaigns behind the Google Ads API surface portalguard uses. Thread-safe."""

    def __init__(
        self,
        campaigns: dict[str, tuple[str, float]] | None = None,
        *,
        customer_id: str = CUSTOMER_ID,
        currency: str = "JPY",
        version: str = "v26",
        port: int = 0,
        token_port: int = 0,
        on_call: Callable[[Call], None] | None = None,
    ) -> None:
        defaults = {"111": ("PAUSED", 3000.0), "222": ("PAUSED", 5000.0)}
        self.campaigns = {cid: FakeCampaign(s, float(b)) for cid, (s, b) in (campaigns or defaults).items()}
        self.customer_id = customer_id
        self.currency = currency
        self.version = version
        self.calls: list[Call] = []
        self._port, self._token_port = port, token_port
        self._on_call = on_call
        self._lock = threading.Lock()
        self._faults: deque[tuple[str, str | None]] = deque()  # (kind, method or None)
        self._tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self.endpoint = ""
        self.token_uri = ""
        self.ca_file = ""

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        key, cert, self.ca_file = _certificate()
        self._types = _AdsTypes(self.version)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-ads")
        self._grpc = grpc.server(self._pool)
        self._grpc.add_generic_rpc_handlers(self._handlers())
        port = self._grpc.add_secure_port(f"127.0.0.1:{self._port}", grpc.ssl_server_credentials([(key, cert)]))
        self._grpc.start()
        self.endpoint = f"127.0.0.1:{port}"
        self._http = _token_server(self, self._token_port, self.ca_file, key)
        # A short poll interval: shutdown() waits up to one interval, and tests stop many fakes.
        serve = functools.partial(self._http.serve_forever, poll_interval=0.02)
        threading.Thread(target=serve, name="fake-ads-oauth", daemon=True).start()
        self.token_uri = f"https://127.0.0.1:{self._http.server_address[1]}/token"
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait(5)  # cancels calls in flight, which ends any hang
            self._grpc = None
            self._pool.shutdown(wait=False)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- what tests and the demo use --------------------------------------------------------

    def action_config(self, **overrides: Any) -> dict[str, Any]:
        """A ``google_ads`` action config (as parsed YAML) pointing at this fake."""
        config: dict[str, Any] = {
            "type": "google_ads",
            "customer_id": self.customer_id,
            "campaign_ids": list(self.campaigns),
            "max_daily_budget": max((c.budget for c in self.campaigns.values()), default=1.0),
            "api_version": self.version,
            "timeout": "5s",
            "endpoint": self.endpoint,
            "ca_file": self.ca_file,
            "credentials": {
                "developer_token": DEVELOPER_TOKEN,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "token_uri": self.token_uri,
            },
        }
        return config | overrides

    def status(self, campaign_id: str) -> str:
        with self._lock:
            return self.campaigns[campaign_id].status

    def set(self, campaign_id: str, status: str | None = None, budget: float | None = None) -> None:
        """Change or add a campaign, as someone editing it in the Google Ads UI would."""
        with self._lock:
            campaign = self.campaigns.setdefault(campaign_id, FakeCampaign("PAUSED", 1.0))
            campaign.status = status or campaign.status
            campaign.budget = campaign.budget if budget is None else float(budget)

    def remove(self, campaign_id: str) -> None:
        """Make a campaign missing (deleted, or in another account)."""
        with self._lock:
            del self.campaigns[campaign_id]

    def fail_next(self, kind: str, n: int = 1, method: str | None = None) -> None:
        """Fail the next ``n`` calls (of ``method`` only, if given) with the fault ``kind``.

        gRPC faults (FAULTS): UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL, CONCURRENT_MODIFICATION,
        AUTHENTICATION, AUTHORIZATION, DEADLINE (the call hangs until the client's deadline).
        TOKEN_FAULTS: INVALID_GRANT (the token endpoint refuses the refresh token, and the access
        tokens issued so far are revoked, so the client's next call needs a refresh).
        """
        if kind not in FAULTS and kind not in TOKEN_FAULTS:
            raise ValueError(f"unknown fault {kind!r} (use {', '.join([*FAULTS, *TOKEN_FAULTS])})")
        if kind in TOKEN_FAULTS:
            self.revoke_access_tokens()
            method = "token"
        with self._lock:
            self._faults.extend([(kind, method)] * n)

    def revoke_access_tokens(self) -> None:
        """Forget the access tokens issued so far: the API answers OAUTH_TOKEN_INVALID to them."""
        with self._lock:
            self._tokens.clear()

    def mutations(self) -> list[Call]:
        """Mutates that changed (or would have changed) something: not validate-only, not failed."""
        return [c for c in self.calls if c.method == "MutateCampaigns" and not c.validate_only and not c.error]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # -- plumbing ---------------------------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
        if self._on_call:
            self._on_call(call)

    def _take_fault(self, method: str) -> str | None:
        with self._lock:
            for i, (kind, only) in enumerate(self._faults):
                if only in (None, method):
                    del self._faults[i]
                    return kind
        return None

    def _issue_token(self) -> str:
        token = f"fake-access-token-{next(self._ids)}"
        with self._lock:
            self._tokens.add(token)
        return token

    def _handlers(self) -> grpc.GenericRpcHandler:
        t, v = self._types, self.version
        return grpc.method_handlers_generic_handler(
            f"google.ads.googleads.{v}.services.GoogleAdsService",
            {
                "Search": grpc.unary_unary_rpc_method_handler(
                    self._wrap("Search", self._search),
                    request_deserializer=t.SearchRequest.deserialize,
                    response_serializer=t.SearchResponse.serialize,
                )
            },
        ), grpc.method_handlers_generic_handler(
            f"google.ads.googleads.{v}.services.CampaignService",
            {
                "MutateCampaigns": grpc.unary_unary_rpc_method_handler(
                    self._wrap("MutateCampaigns", self._mutate),
                    request_deserializer=t.MutateRequest.deserialize,
                    response_serializer=t.MutateResponse.serialize,
                )
            },
        )

    def _wrap(self, method: str, handler: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        """Common to every call: request id, fault injection, auth checks, the call log."""

        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            call = _describe(request, Call(method, request.customer_id, request_id=f"fake-req-{next(self._ids)}"))
            context.set_trailing_metadata((("request-id", call.request_id),))
            fault = self._take_fault(method)
            try:
                if fault:
                    self._inject(fault, context)
                self._authenticate(dict(context.invocation_metadata()), request.customer_id)
                with self._lock:
                    response = handler(request)
            except _AdsAbort as err:
                self._record(replace(call, error=fault or f"{err.error}.{err.name}"))
                self._abort(context, call.request_id, err)
            self._record(call)
            return response

        return serve

    def _inject(self, fault: str, context: grpc.ServicerContext) -> None:
        code, error, name = FAULTS[fault]
        if fault == "DEADLINE":
            done = threading.Event()
            context.add_callback(done.set)  # runs when the client's deadline cancels the call
            done.wait(_HANG_LIMIT)
        if error and name:
            raise _AdsAbort(code, error, name, f"Injected fault {fault}.")
        raise _AdsAbort(code, "", "", f"Injected fault {fault}.")

    def _authenticate(self, metadata: dict[str, Any], customer_id: str) -> None:
        bearer = str(metadata.get("authorization", "")).removeprefix("Bearer ")
        with self._lock:
            token_ok = bearer in self._tokens
        if metadata.get("developer-token") != DEVELOPER_TOKEN:
            raise _AdsAbort(
                grpc.StatusCode.UNAUTHENTICATED,
                "authentication_error",
                "DEVELOPER_TOKEN_INVALID",
                "The developer token is not valid.",
            )
        if not token_ok:
            raise _AdsAbort(
                grpc.StatusCode.UNAUTHENTICATED,
                "authentication_error",
                "OAUTH_TOKEN_INVALID",
                "The OAuth token in the header is not valid.",
            )
        if customer_id != self.customer_id:
            raise _AdsAbort(
                grpc.StatusCode.PERMISSION_DENIED,
                "authorization_error",
                "USER_PERMISSION_DENIED",
                "User doesn't have permission to access customer.",
            )

    def _abort(self, context: grpc.ServicerContext, request_id: str, err: _AdsAbort) -> None:
        metadata: list[tuple[str, str | bytes]] = [("request-id", request_id)]
        if err.error:
            failure = self._types.failure(err.error, err.name, err.message, request_id)
            metadata.append((f"google.ads.googleads.{self.version}.errors.googleadsfailure-bin", failure))
        context.set_trailing_metadata(tuple(metadata))
        context.abort(err.code, err.message)

    # -- the two methods (called with self._lock held) --------------------------------------

    def _search(self, request: Any) -> Any:
        if not re.search(r"\bFROM\s+campaign\b", request.query, re.IGNORECASE):
            raise _AdsAbort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "request_error",
                "INVALID_INPUT",
                "This fake only answers queries FROM campaign.",
            )
        wanted = _campaign_ids(request.query)
        rows = [
            self._types.row(request.customer_id, cid, c.status, c.budget, self.currency)
            for cid, c in self.campaigns.items()
            if wanted is None or cid in wanted
        ]
        return self._types.SearchResponse(results=rows)

    def _mutate(self, request: Any) -> Any:
        changes: dict[str, str] = {}
        for i, op in enumerate(request.operations):
            cid = op.update.resource_name.rsplit("/", 1)[-1]
            if op.update.resource_name != f"customers/{request.customer_id}/campaigns/{cid}" or (
                cid not in self.campaigns
            ):
                raise _AdsAbort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "mutate_error",
                    "RESOURCE_NOT_FOUND",
                    f"operations[{i}]: resource {op.update.resource_name} was not found.",
                )
            if "status" in op.update_mask.paths:  # like the real API, unmasked fields stay as they are
                changes[cid] = op.update.status.name
        if not request.validate_only:  # atomic: all operations were valid, now apply them
            for cid, status in changes.items():
                self.campaigns[cid].status = status
        results = (
            [] if request.validate_only else [{"resource_name": o.update.resource_name} for o in request.operations]
        )
        return self._types.MutateResponse(results=results)


def _describe(request: Any, call: Call) -> Call:
    if hasattr(request, "operations"):
        statuses = {o.update.resource_name.rsplit("/", 1)[-1]: o.update.status.name for o in request.operations}
        return replace(call, validate_only=request.validate_only, statuses=statuses)
    return replace(call, query=request.query)


def _campaign_ids(query: str) -> set[str] | None:
    """The ids a GAQL WHERE clause asks for, or None for all campaigns."""
    match = re.search(r"campaign\.id\s+IN\s*\(([^)]*)\)", query, re.IGNORECASE)
    if match:
        return {part.strip() for part in match.group(1).split(",") if part.strip()}
    match = re.search(r"campaign\.id\s*=\s*(\d+)", query, re.IGNORECASE)
    return {match.group(1)} if match else None


class _AdsTypes:
    """The proto-plus message types of one API version that the fake speaks."""

    def __init__(self, version: str) -> None:
        base = f"google.ads.googleads.{version}"
        self._base = base
        ads_service = import_module(f"{base}.services.types.google_ads_service")
        campaign_service = import_module(f"{base}.services.types.campaign_service")
        self.SearchRequest = ads_service.SearchGoogleAdsRequest
        self.SearchResponse = ads_service.SearchGoogleAdsResponse
        self.Row = ads_service.GoogleAdsRow
        self.MutateRequest = campaign_service.MutateCampaignsRequest
        self.MutateResponse = campaign_service.MutateCampaignsResponse
        self._errors: ModuleType = import_module(f"{base}.errors.types.errors")
        self._status = import_module(f"{base}.enums.types.campaign_status").CampaignStatusEnum.CampaignStatus

    def row(self, customer_id: str, cid: str, status: str, budget: float, currency: str) -> Any:
        return self.Row(
            campaign={
                "resource_name": f"customers/{customer_id}/campaigns/{cid}",
                "id": int(cid),
                "name": f"Fallback campaign {cid}",
                "status": self._status[status],
            },
            campaign_budget={"amount_micros": round(budget * 1_000_000)},
            customer={"currency_code": currency},
        )

    def failure(self, error: str, name: str, message: str, request_id: str) -> bytes:
        # quota_error -> errors.types.quota_error.QuotaErrorEnum.QuotaError, and so on
        enum = "".join(part.title() for part in error.split("_"))
        value = getattr(getattr(import_module(f"{self._base}.errors.types.{error}"), enum + "Enum"), enum)[name]
        failure = self._errors.GoogleAdsFailure(
            errors=[self._errors.GoogleAdsError(error_code={error: value}, message=message)],
            request_id=request_id,
        )
        return self._errors.GoogleAdsFailure.serialize(failure)


# -- the OAuth token endpoint -------------------------------------------------------------------


def _token_server(ads: FakeGoogleAds, port: int, cert_file: str, key: bytes) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _TokenHandler)
    server.daemon_threads = True
    server.ads = ads  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as key_file:  # ssl loads keys from files only
        key_file.write(key)
        key_file.flush()
        context.load_cert_chain(cert_file, key_file.name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


class _TokenHandler(BaseHTTPRequestHandler):
    """``POST /token`` with ``grant_type=refresh_token``, as Google's OAuth 2.0 server."""

    def do_POST(self) -> None:
        ads: FakeGoogleAds = self.server.ads  # type: ignore[attr-defined]
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        good = (
            form.get("grant_type") == "refresh_token"
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == CLIENT_SECRET
            and form.get("refresh_token") == REFRESH_TOKEN
        )
        fault = ads._take_fault("token")
        ads._record(Call("token", error=fault or (None if good else "invalid_grant")))
        if fault or not good:
            self._answer(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
            return
        self._answer(200, {"access_token": ads._issue_token(), "expires_in": 3599, "token_type": "Bearer"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the call log instead
        pass


# -- standalone ---------------------------------------------------------------------------------


def _parse_campaign(text: str) -> tuple[str, tuple[str, float]]:
    match = re.fullmatch(r"(\d+)=(ENABLED|PAUSED|REMOVED):(\d+(?:\.\d+)?)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not ID=STATUS:BUDGET (e.g. 111=PAUSED:3000)")
    return match.group(1), (match.group(2), float(match.group(3)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local fake Google Ads API (tests and demo only).")
    parser.add_argument("--campaign", action="append", type=_parse_campaign, metavar="ID=STATUS:BUDGET")
    parser.add_argument("--customer-id", default=CUSTOMER_ID)
    parser.add_argument("--version", default="v26")
    parser.add_argument("--port", type=int, default=0, help="gRPC port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--token-port", type=int, default=0, help="OAuth token endpoint port")
    parser.add_argument("--ca-file", help="Also copy the self-signed certificate here.")
    args = parser.parse_args(argv)

    def show(call: Call) -> None:
        print(
            json.dumps(
                {
                    "call": call.method,
                    "validate_only": call.validate_only,
                    "statuses": call.statuses,
                    "error": call.error,
                    "request_id": call.request_id,
                }
            ),
            flush=True,
        )

    campaigns = dict(args.campaign) if args.campaign else None
    fake = FakeGoogleAds(
        campaigns,
        customer_id=args.customer_id,
        version=args.version,
        port=args.port,
        token_port=args.token_port,
        on_call=show,
    )
    with fake as ads:
        if args.ca_file:
            shutil.copyfile(ads.ca_file, args.ca_file)
            ads.ca_file = args.ca_file
        print(f"endpoint: {ads.endpoint}\nca_file: {ads.ca_file}\ntoken_uri: {ads.token_uri}", flush=True)
        print("action config:", json.dumps(ads.action_config()), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
