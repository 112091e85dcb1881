"""``corral vm console``: the VM's serial console over the API's WebSocket.

On a terminal it behaves like ``virsh console``: raw mode, every key goes to the guest, ``Ctrl-]``
quits. With stdin/stdout not a terminal (scripts, tests) it relays bytes: stdin to the guest,
guest output to stdout, and ends when stdin ends (after ``--linger`` seconds of further output)
or when ``Ctrl-]`` (byte 0x1d) appears in the input.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import ssl
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field

import typer
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from corral.cli import context as c
from corral.cli.client import ApiError, CannotConnect, CliError, CorralClient, seg, ssl_context

ESCAPE = b"\x1d"  # Ctrl-], as in virsh and telnet
#: How often the input loop looks whether the server has closed the connection.
SELECT_S = 0.2
OPEN_TIMEOUT_S = 10.0


@dataclass
class _Reader:
    """Copies guest output to stdout in a thread; remembers how the connection ended."""

    ws: ClientConnection
    out_fd: int
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def run(self) -> None:
        try:
            for message in self.ws:
                data = message.encode() if isinstance(message, str) else message
                _write_all(self.out_fd, data)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            if rcvd is not None and rcvd.code not in (1000, 1001):
                self.error = rcvd.reason or f"console closed by Corral (code {rcvd.code})"
            elif rcvd is None and exc.sent is None:
                self.error = "the console connection was lost"
        except OSError as exc:
            self.error = f"cannot write console output: {exc}"
        finally:
            self.done.set()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _handshake_error(exc: InvalidStatus, name: str) -> CliError:
    """The API refused the WebSocket: report its problem+json like any other answer."""
    response = exc.response
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        body = json.loads(response.body or b"")
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return ApiError(response.status_code, body["detail"])
    # A server that closes the WebSocket before accepting it answers a bare 403: no reason given.
    return ApiError(
        response.status_code,
        f"the console of VM {name} was refused (HTTP {response.status_code}): check that you are "
        "logged in (`corral whoami`), that your role may open consoles (operator or admin), and "
        f"that VM {name} exists and is running",
    )


def _open(client: CorralClient, url: str, name: str) -> ClientConnection:
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    tls = ssl_context(client.verify) if url.startswith("wss://") else None
    try:
        return connect(url, additional_headers=headers, ssl=tls, open_timeout=OPEN_TIMEOUT_S)
    except InvalidStatus as exc:
        raise _handshake_error(exc, name) from None
    except (InvalidURI, InvalidHandshake) as exc:
        raise CliError(f"cannot open the console at {url}: {exc}") from None
    except TimeoutError:
        raise CannotConnect(
            f"the console at {url} did not answer in {OPEN_TIMEOUT_S:g} s"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise client.untrusted(exc) from None
    except OSError:
        raise client.unreachable() from None


def _pump_input(ws: ClientConnection, in_fd: int, reader: _Reader) -> bool:
    """Send stdin to the guest until Ctrl-], end of input, or the server closes.

    Returns ``True`` when input ended (EOF), ``False`` for Ctrl-] or a closed connection.
    """
    while not reader.done.is_set():
        ready, _, _ = select.select([in_fd], [], [], SELECT_S)
        if not ready:
            continue
        data = os.read(in_fd, 4096)
        if not data:
            return True
        cut = data.find(ESCAPE)
        chunk = data if cut < 0 else data[:cut]
        if chunk:
            try:
                ws.send(chunk)
            except ConnectionClosed:
                return False
        if cut >= 0:
            return False
    return False


def run_console(
    client: CorralClient,
    name: str,
    *,
    linger_s: float,
    in_fd: int | None = None,
    out_fd: int | None = None,
) -> None:
    """Relay the serial console of VM ``name`` until the user leaves; ``CliError`` if it broke."""
    ws = _open(client, client.websocket_url(f"/vms/{seg(name)}/serial"), name)
    try:
        in_fd = sys.stdin.fileno() if in_fd is None else in_fd
        out_fd = sys.stdout.fileno() if out_fd is None else out_fd
        error = _relay(ws, name, in_fd, out_fd, linger_s)
    finally:
        ws.close()
    if error is not None:
        raise CliError(error)


def _relay(ws: ClientConnection, name: str, in_fd: int, out_fd: int, linger_s: float) -> str | None:
    interactive = os.isatty(in_fd)
    reader = _Reader(ws, out_fd)
    thread = threading.Thread(target=reader.run, name="console-output", daemon=True)
    if interactive:
        c.err.print(f"Connected to VM {name}\nEscape character is ^] (Ctrl + ])", markup=False)
    thread.start()
    try:
        with _raw_terminal(in_fd) if interactive else contextlib.nullcontext():
            input_ended = _pump_input(ws, in_fd, reader)
            if input_ended and not interactive:
                # Output already on its way after the last input line still deserves printing.
                reader.done.wait(linger_s)
    finally:
        ws.close()
        thread.join(timeout=5)
        if interactive:
            c.err.print()
    return reader.error


def console_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The VM's name."),
    linger: float = typer.Option(
        1.0,
        "--linger",
        min=0,
        help="When stdin is not a terminal: seconds to keep printing output after it ends.",
    ),
) -> None:
    """Attach to the VM's serial console (leave with Ctrl-]).

    When stdin is not a terminal, bytes are relayed until stdin ends.
    """
    run_console(c.client(ctx), name, linger_s=linger)
