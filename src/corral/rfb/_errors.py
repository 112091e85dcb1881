"""Errors of ``corral.rfb``; the library imports nothing else from Corral.

    RFBError                         base of every error this package raises on purpose
    ├── LocalProtocolError           the caller used the API wrongly (our fault)
    ├── RemoteProtocolError          the peer broke the RFB protocol (its fault): the server,
    │                                or the viewer of a relay
    │   ├── TruncatedStream          the connection ended in the middle of a message
    │   ├── InvalidRectangle         a rectangle or CopyRect source lies outside the framebuffer
    │   ├── InvalidEncodingData      corrupt pixel or clipboard data: bad zlib stream, palette …
    │   ├── UnsupportedServer        no protocol version or security type we can speak
    │   └── LimitExceeded            the peer asked for more than ``Limits`` allows
    ├── AuthenticationFailed         the server refused our credentials or security handshake
    ├── RFBConnectionError           the transport failed (refused, reset, TLS failure)
    └── RFBTimeout                   a bounded wait (update, image match) ran out of time

``LimitExceeded`` is a ``RemoteProtocolError`` because only a hostile or broken peer triggers it;
fuzz targets rely on the rule "input decodes or raises RemoteProtocolError". On a relay's viewer
side (``RelayServerHandshake``, ``ClientMessageReader``) the remote is the viewer, and the
messages say so ("the viewer sent …").
"""

from __future__ import annotations


class RFBError(Exception):
    """Base of every error ``corral.rfb`` raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LocalProtocolError(RFBError):
    """The caller asked for something the protocol state does not allow."""


class RemoteProtocolError(RFBError):
    """The peer sent something that violates the RFB protocol: the server, or for a relay's
    ``RelayServerHandshake`` and ``ClientMessageReader``, the viewer."""


class TruncatedStream(RemoteProtocolError):
    """The server closed the connection in the middle of a message."""


class InvalidRectangle(RemoteProtocolError):
    """A rectangle (or a CopyRect source) does not fit in the framebuffer."""


class InvalidEncodingData(RemoteProtocolError):
    """Pixel data that cannot be decoded: corrupt stream, bad palette index, bad tile."""


class UnsupportedServer(RemoteProtocolError):
    """The server offers no protocol version, security type or encoding we support."""


class LimitExceeded(RemoteProtocolError):
    """The server asked for more memory or work than the configured ``Limits`` allow."""


class AuthenticationFailed(RFBError):
    """The server rejected the credentials, or the security handshake failed."""


class RFBConnectionError(RFBError):
    """The transport failed: connection refused or reset, TLS handshake failure."""


class RFBTimeout(RFBError):
    """A bounded wait ran out of time."""
