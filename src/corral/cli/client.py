"""``CorralClient``: the one HTTP door every CLI command goes through.

Exceptions (all carry a message a person can act on; the CLI prints them as ``error: …``)::

    CliError            base; ``exit_code`` (1 unless said otherwise)
    ├── ApiError        the API answered 4xx/5xx (problem+json ``detail`` and 422 field ``errors``)
    ├── CannotConnect   no answer: connection refused, timeout, TLS failure
    └── BadAnswer       the answer is not what the contract promises (version mismatch?)

Requests go through ``transport.Connection`` (the standard library's ``http.client``); its
exceptions are converted at this boundary, in ``_map_transport_errors``.
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from corral.cli.transport import (
    ConnectFailed,
    Connection,
    Response,
    TimedOut,
    TransportFailed,
)

if TYPE_CHECKING:
    # At run time only ``parse``/``parse_list`` import pydantic: ``corral vm list`` does without.
    from pydantic import BaseModel, ValidationError

API_PREFIX = "/api/v1"
DEFAULT_URL = "http://127.0.0.1:8080"

M = TypeVar("M", bound="BaseModel")
T = TypeVar("T")


class CliError(Exception):
    """An error the CLI reports as ``error: <message>`` and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class FieldError:
    loc: str
    msg: str


class ApiError(CliError):
    """The API refused or failed a request (RFC 9457 problem+json)."""

    def __init__(self, status: int, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors: list[FieldError] = errors or []


class CannotConnect(CliError):
    """Corral did not answer at all."""


class BadAnswer(CliError):
    """Corral answered something this client does not understand."""


def seg(name: str) -> str:
    """One path segment, percent-encoded: a name can never reach another endpoint."""
    if name.strip(".") == "":
        # "." and ".." would be removed as dot-segments by URL normalisation.
        return name.replace(".", "%2E")
    return urllib.parse.quote(name, safe="")


def normalize_url(url: str) -> str:
    """``http://h:8080/`` and ``http://h:8080/api/v1`` both mean the server ``http://h:8080``."""
    url = url.strip().rstrip("/")
    return url.removesuffix(API_PREFIX).rstrip("/")


def tls_verify(insecure: bool, ca_cert: str | None) -> ssl.SSLContext | bool:
    """What to verify the server's TLS certificate with: the system CAs, a given CA, or nothing."""
    if insecure:
        return False
    if ca_cert:
        try:
            return ssl.create_default_context(cafile=ca_cert)
        except (OSError, ssl.SSLError) as exc:
            raise CliError(f"cannot use CA certificate {ca_cert}: {exc}") from None
    return True


def ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The same choice as an ``ssl.SSLContext`` (for the WebSocket console)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _problem(response: Response) -> ApiError:
    """Turn an error answer into ``ApiError``: problem+json, FastAPI's ``{"detail"}``, or text."""
    detail = response.reason_phrase or f"HTTP {response.status_code}"
    errors: list[FieldError] = []
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text.strip()
        if text:
            detail = text[:500]
        return ApiError(response.status_code, detail)
    if isinstance(body, dict):
        raw_detail = body.get("detail", body.get("title"))
        raw_errors = body.get("errors")
        if isinstance(raw_detail, list) and raw_errors is None:
            # FastAPI's own 422 shape: "detail" is the list of field errors.
            raw_errors, raw_detail = raw_detail, "invalid request"
        if isinstance(raw_detail, str) and raw_detail:
            detail = raw_detail
        if isinstance(raw_errors, list):
            errors = [_field_error(item) for item in raw_errors if isinstance(item, dict)]
    return ApiError(response.status_code, detail, errors)


def _field_error(item: dict[str, Any]) -> FieldError:
    loc = item.get("loc", "")
    if isinstance(loc, list):
        loc = ".".join(str(p) for p in loc if p not in ("body", "query", "path"))
    return FieldError(loc=str(loc), msg=str(item.get("msg", "invalid")))


@dataclass
class CorralClient:
    """Requests to one Corral server with one bearer token (one keep-alive connection).

    ``request`` raises ``ApiError`` for 4xx/5xx answers and ``CannotConnect`` when the server does
    not answer; ``parse``/``parse_list`` check answers against the ``corral.model`` types.
    """

    url: str
    token: str | None = field(default=None, repr=False)
    verify: ssl.SSLContext | bool = True
    timeout: float = 30.0
    _http: Connection | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = normalize_url(self.url)

    @property
    def http(self) -> Connection:
        if self._http is None:
            headers = {"Accept": "application/json", "User-Agent": "corral-cli"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            # ``verify`` counts for an https:// server only (``True``: the system's CAs).
            self._http = Connection(
                self.url + API_PREFIX, headers=headers, verify=self.verify, timeout=self.timeout
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> CorralClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _map_transport_errors(self) -> Iterator[None]:
        try:
            yield
        except ConnectFailed as exc:
            if isinstance(exc.__cause__, ssl.SSLCertVerificationError) or "CERTIFICATE" in str(exc):
                raise self.untrusted(exc) from None
            raise self.unreachable() from None
        except TimedOut:
            raise CannotConnect(
                f"Corral at {self.url} did not answer within {self.timeout:g} s"
            ) from None
        except TransportFailed as exc:
            raise CannotConnect(f"cannot talk to Corral at {self.url}: {exc}") from None

    def untrusted(self, exc: Exception) -> CannotConnect:
        return CannotConnect(
            f"the TLS certificate of {self.url} is not trusted ({exc}): pass --ca-cert FILE "
            "with Corral's CA certificate (or --insecure for a test setup)"
        )

    def unreachable(self) -> CannotConnect:
        return CannotConnect(f"cannot reach Corral at {self.url}: is `make run` running?")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Response:
        """Send one request to ``/api/v1{path}``; raise ``ApiError`` unless it succeeded."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        with self._map_transport_errors():
            response = self.http.request(method, path, json_body=json, params=clean)
        if response.status_code >= 400:
            raise _problem(response)
        return response

    def put_stream(
        self,
        path: str,
        body: Iterable[bytes],
        length: int,
        *,
        params: dict[str, Any] | None = None,
        answer_timeout: float = 300.0,
    ) -> Response:
        """PUT ``length`` bytes from ``body`` as they come (no buffering), then wait up to
        ``answer_timeout`` s for the answer (the server finishes its side first)."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        with self._map_transport_errors():
            response = self.http.request(
                "PUT",
                path,
                content=body,
                params=clean,
                headers=headers,
                answer_timeout=max(self.timeout, answer_timeout),
            )
        if response.status_code >= 400:
            raise _problem(response)
        return response

    def get(self, path: str, params: dict[str, Any] | None = None) -> Response:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Response:
        return self.request("POST", path, json=json)

    def patch(self, path: str, json: Any = None) -> Response:
        return self.request("PATCH", path, json=json)

    def delete(self, path: str, params: dict[str, Any] | None = None) -> Response:
        return self.request("DELETE", path, params=params)

    def websocket_url(self, path: str) -> str:
        """``ws(s)://host/api/v1{path}`` for the same server."""
        scheme, _, rest = self.url.partition("://")
        ws_scheme = "wss" if scheme == "https" else "ws"
        return f"{ws_scheme}://{rest}{API_PREFIX}{path}"


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise BadAnswer(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} without JSON: is this a Corral server?"
        ) from None


def parse(response: Response, model: type[M]) -> M:
    """Check an answer against a ``corral.model`` type."""
    from pydantic import ValidationError

    try:
        return model.model_validate(_json(response))
    except ValidationError as exc:
        raise BadAnswer(_mismatch(response, model.__name__, exc)) from None


def parse_list(response: Response, model: type[M]) -> list[M]:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(list[model]).validate_python(_json(response))  # type: ignore[valid-type]
    except ValidationError as exc:
        raise BadAnswer(_mismatch(response, f"list[{model.__name__}]", exc)) from None


def parse_with(response: Response, expected: str, read: Callable[[Any], T]) -> T:
    """Read an answer with ``read``, which raises ``ValueError("LOC: what is wrong")`` where
    it is not the ``expected`` type (for commands that skip pydantic to start quicker)."""
    try:
        return read(_json(response))
    except ValueError as exc:
        raise BadAnswer(_not_a(response, expected, str(exc).lstrip(": "))) from None


def _mismatch(response: Response, expected: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return _not_a(response, expected, f"{loc}: {first['msg']}")


def _not_a(response: Response, expected: str, problem: str) -> str:
    return (
        f"{response.request.method} {response.request.url.path} answered something that is not "
        f"a {expected} ({problem}): are the CLI and the server the same version?"
    )
