"""The RFB handshake as a table of states: version, security, VeNCrypt, ServerInit.

Transitions (one method per state; each reads one server message or raises ``NeedData``):

    VERSION ──3.3──▶ SECURITY_33 ─────────────┐
       └─3.7/3.8─▶ SECURITY_TYPES ───────────┤ chosen type:
    NONE  (3.8) ─▶ SECURITY_RESULT; (3.3/3.7) ─▶ SERVER_INIT
    VNC_AUTH ─▶ VNC_CHALLENGE ─▶ SECURITY_RESULT
    VENCRYPT ─▶ VENCRYPT_VERSION ─▶ VENCRYPT_STATUS ─▶ VENCRYPT_SUBTYPES ─▶ VENCRYPT_ACK
             ─▶ WAIT_TLS (caller starts TLS) ─▶ VNC_CHALLENGE | SECURITY_RESULT
    SECURITY_RESULT ─ok─▶ SERVER_INIT ─▶ DONE
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ._des import vnc_auth_response
from ._errors import AuthenticationFailed, RFBError, UnsupportedServer
from ._events import Connected, Event, SecurityType, TLSRequired, VeNCryptSubtype
from ._limits import Limits
from ._pixel import PixelFormat
from ._reader import Reader

_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")
_TLS_SUBTYPES = frozenset(VeNCryptSubtype) - {VeNCryptSubtype.PLAIN}
_VNC_AFTER_TLS = (VeNCryptSubtype.X509_VNC, VeNCryptSubtype.TLS_VNC)
_PLAIN = (VeNCryptSubtype.PLAIN, VeNCryptSubtype.TLS_PLAIN, VeNCryptSubtype.X509_PLAIN)


class HandshakeState(enum.Enum):
    VERSION = enum.auto()
    SECURITY_33 = enum.auto()
    SECURITY_TYPES = enum.auto()
    VNC_CHALLENGE = enum.auto()
    VENCRYPT_VERSION = enum.auto()
    VENCRYPT_STATUS = enum.auto()
    VENCRYPT_SUBTYPES = enum.auto()
    VENCRYPT_ACK = enum.auto()
    WAIT_TLS = enum.auto()
    SECURITY_RESULT = enum.auto()
    SERVER_INIT = enum.auto()
    DONE = enum.auto()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client may use to authenticate, in order of preference."""

    password: str | None = None
    username: str | None = None
    tls: bool = False  # the transport can start TLS (VeNCrypt)
    shared: bool = True

    def security_types(self) -> list[int]:
        types: list[int] = []
        if self.tls:
            types.append(SecurityType.VENCRYPT)
        if self.password is not None:
            types.append(SecurityType.VNC_AUTH)
        types.append(SecurityType.NONE)
        return types

    def vencrypt_subtypes(self) -> list[int]:
        subtypes: list[int] = []
        if self.username is not None and self.password is not None:
            subtypes.append(VeNCryptSubtype.X509_PLAIN)
        if self.password is not None:
            subtypes.append(VeNCryptSubtype.X509_VNC)
        subtypes.append(VeNCryptSubtype.X509_NONE)
        return subtypes


class Handshake:
    """Drives the client side of the handshake; ``send`` queues bytes for the server."""

    def __init__(self, creds: Credentials, limits: Limits, send: Callable[[bytes], None]) -> None:
        self.state = HandshakeState.VERSION
        self.version = (3, 8)
        self.security = 0
        self.subtype = 0
        self._creds = creds
        self._limits = limits
        self._send = send

    def step(self, r: Reader) -> Event | None:
        return self._HANDLERS[self.state](self, r)

    def tls_started(self) -> None:
        if self.subtype in _VNC_AFTER_TLS:
            self.state = HandshakeState.VNC_CHALLENGE
        elif self.subtype in _PLAIN:
            self._send_plain()
        else:
            self.state = HandshakeState.SECURITY_RESULT

    def _reason(self, r: Reader) -> str:
        n = r.u32()
        self._limits.check(n, self._limits.max_reason_bytes, "a reason string", "max_reason_bytes")
        return r.take(n).decode("utf-8", "replace")

    def _on_version(self, r: Reader) -> Event | None:
        line = r.take(12)
        m = _VERSION.fullmatch(line)
        if not m:
            raise UnsupportedServer(f"server is not an RFB (VNC) server: it greeted with {line!r}")
        major, minor = int(m[1]), int(m[2])
        if major < 3:
            raise UnsupportedServer(f"server speaks RFB {major}.{minor}; 3.3 or later is needed")
        self.version = (3, 8) if major > 3 or minor >= 8 else (3, 7) if minor == 7 else (3, 3)
        self._send(b"RFB 003.%03d\n" % self.version[1])
        if self.version == (3, 3):
            self.state = HandshakeState.SECURITY_33
        else:
            self.state = HandshakeState.SECURITY_TYPES
        return None

    def _on_security_33(self, r: Reader) -> Event | None:
        chosen = r.u32()
        if chosen == SecurityType.INVALID:
            raise AuthenticationFailed(f"server refused the connection: {self._reason(r)}")
        if chosen not in self._creds.security_types() or chosen == SecurityType.VENCRYPT:
            raise _no_common_security([chosen], self._creds)
        self._chose(chosen)
        return None

    def _on_security_types(self, r: Reader) -> Event | None:
        count = r.u8()
        if count == 0:
            raise AuthenticationFailed(f"server refused the connection: {self._reason(r)}")
        offered = list(r.take(count))
        for wanted in self._creds.security_types():
            if wanted in offered:
                self._send(bytes([wanted]))
                self._chose(wanted)
                return None
        raise _no_common_security(offered, self._creds)

    def _chose(self, security: int) -> None:
        self.security = security
        if security == SecurityType.VNC_AUTH:
            self.state = HandshakeState.VNC_CHALLENGE
        elif security == SecurityType.VENCRYPT:
            self.state = HandshakeState.VENCRYPT_VERSION
        elif self.version == (3, 8):
            self.state = HandshakeState.SECURITY_RESULT
        else:
            self._client_init()

    def _on_vnc_challenge(self, r: Reader) -> Event | None:
        challenge = r.take(16)
        self._send(vnc_auth_response(self._creds.password or "", challenge))
        self.state = HandshakeState.SECURITY_RESULT
        return None

    def _on_vencrypt_version(self, r: Reader) -> Event | None:
        major, minor = r.u8(), r.u8()
        if (major, minor) < (0, 2):
            raise UnsupportedServer(f"server speaks VeNCrypt {major}.{minor}; 0.2 is needed")
        self._send(b"\x00\x02")
        self.state = HandshakeState.VENCRYPT_STATUS
        return None

    def _on_vencrypt_status(self, r: Reader) -> Event | None:
        if r.u8() != 0:
            raise UnsupportedServer("server refused VeNCrypt version 0.2")
        self.state = HandshakeState.VENCRYPT_SUBTYPES
        return None

    def _on_vencrypt_subtypes(self, r: Reader) -> Event | None:
        count = r.u8()
        offered = [r.u32() for _ in range(count)]
        for wanted in self._creds.vencrypt_subtypes():
            if wanted in offered:
                self._send(struct.pack(">I", wanted))
                self.subtype = wanted
                self.state = HandshakeState.VENCRYPT_ACK
                return None
        raise UnsupportedServer(
            f"server offers the VeNCrypt subtypes {offered}; this client supports "
            f"{self._creds.vencrypt_subtypes()} (X509Vnc/X509Plain need a password)"
        )

    def _on_vencrypt_ack(self, r: Reader) -> Event | None:
        if r.u8() != 1:
            raise AuthenticationFailed(f"server rejected the VeNCrypt subtype {self.subtype}")
        if self.subtype not in _TLS_SUBTYPES:
            self._send_plain()
            return None
        # Bytes after the ack would be plaintext where only TLS may follow: the connection
        # refuses them whether they came in this read or a later one (see RFBConnection).
        self.state = HandshakeState.WAIT_TLS
        return TLSRequired(VeNCryptSubtype(self.subtype))

    def _send_plain(self) -> None:
        user = (self._creds.username or "").encode()
        password = (self._creds.password or "").encode()
        self._send(struct.pack(">II", len(user), len(password)) + user + password)
        self.state = HandshakeState.SECURITY_RESULT

    def _on_security_result(self, r: Reader) -> Event | None:
        result = r.u32()
        if result != 0:
            reason = self._reason(r) if self.version == (3, 8) else "no reason given"
            raise AuthenticationFailed(f"server rejected the authentication: {reason}")
        self._client_init()
        return None

    def _client_init(self) -> None:
        self._send(b"\x01" if self._creds.shared else b"\x00")
        self.state = HandshakeState.SERVER_INIT

    def _on_server_init(self, r: Reader) -> Event | None:
        width, height = r.u16(), r.u16()
        pf = PixelFormat.from_bytes(r.take(16))
        n = r.u32()
        self._limits.check(n, self._limits.max_name_bytes, "a desktop name", "max_name_bytes")
        name = r.take(n).decode("utf-8", "replace")
        self._limits.check_size(width, height, "framebuffer")
        self.state = HandshakeState.DONE
        return Connected(self.version, self.security, width, height, name, pf)

    _HANDLERS: ClassVar[dict[HandshakeState, Callable[[Handshake, Reader], Event | None]]] = {
        HandshakeState.VERSION: _on_version,
        HandshakeState.SECURITY_33: _on_security_33,
        HandshakeState.SECURITY_TYPES: _on_security_types,
        HandshakeState.VNC_CHALLENGE: _on_vnc_challenge,
        HandshakeState.VENCRYPT_VERSION: _on_vencrypt_version,
        HandshakeState.VENCRYPT_STATUS: _on_vencrypt_status,
        HandshakeState.VENCRYPT_SUBTYPES: _on_vencrypt_subtypes,
        HandshakeState.VENCRYPT_ACK: _on_vencrypt_ack,
        HandshakeState.SECURITY_RESULT: _on_security_result,
        HandshakeState.SERVER_INIT: _on_server_init,
    }


def _no_common_security(offered: Sequence[int], creds: Credentials) -> RFBError:
    """The error for "no security type in common": missing credentials or a foreign server."""
    names = ", ".join(_security_name(t) for t in offered)
    if SecurityType.VNC_AUTH in offered and creds.password is None:
        return AuthenticationFailed(
            f"server requires a password (it offers {names}): pass password=…"
        )
    if SecurityType.VENCRYPT in offered and not creds.tls:
        return AuthenticationFailed(
            f"server requires TLS (it offers {names}): pass ssl_context=… for VeNCrypt"
        )
    return UnsupportedServer(
        f"server offers only the security types {names}, none of which this client supports"
    )


def _security_name(value: int) -> str:
    try:
        return SecurityType(value).name
    except ValueError:
        return str(value)
