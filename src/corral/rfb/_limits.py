"""Hard limits on what a server (or a relay's viewer) may make us allocate or compute."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import LimitExceeded


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds checked *before* the client buffers or allocates anything.

    The defaults allow an 8K desktop and everything a real server sends, while keeping one
    connection's worst case around a few hundred MiB of memory and a bounded amount of work.
    A relay's ``ClientMessageReader`` applies ``max_cut_text_bytes``, ``max_client_encodings``
    and ``max_client_screens`` to what a viewer sends.
    """

    max_width: int = 8192
    max_height: int = 8192
    max_pixels: int = 8192 * 4320
    max_rects_per_update: int = 65536
    max_subrects_per_rect: int = 1 << 20
    # Bytes produced by zlib (Zlib, ZRLE, Tight) and image decoders (JPEG, PNG) per update.
    max_decompressed_bytes_per_update: int = 512 << 20
    # Pixels written per update (CopyRect, RRE and Hextile subrectangles may overlap):
    # caps the CPU a server can burn with overlapping fills.
    max_painted_pixels_per_update: int = 16 * 8192 * 4320
    max_cursor_size: int = 512
    max_cut_text_bytes: int = 16 << 20
    max_name_bytes: int = 64 << 10
    max_reason_bytes: int = 64 << 10
    max_compressed_rect_bytes: int = 64 << 20
    # A viewer's SetEncodings (noVNC sends about 25) and SetDesktopSize (noVNC sends 1 screen).
    max_client_encodings: int = 1024
    max_client_screens: int = 16

    def check_size(self, width: int, height: int, what: str) -> None:
        """Raise ``LimitExceeded`` if a framebuffer of this size is not allowed."""
        if width > self.max_width or height > self.max_height or width * height > self.max_pixels:
            raise LimitExceeded(
                f"server announced a {what} of {width}x{height} pixels, above the client limit "
                f"of {self.max_width}x{self.max_height} ({self.max_pixels} pixels); raise "
                "Limits.max_width/max_height/max_pixels if this server is trusted"
            )

    def check(self, value: int, limit: int, what: str, field: str) -> None:
        """Raise ``LimitExceeded`` if ``value`` exceeds ``limit`` (named ``Limits.field``)."""
        if value > limit:
            raise LimitExceeded(
                f"server sent {what} of {value}, above the client limit of {limit}; "
                f"raise Limits.{field} if this server is trusted"
            )
