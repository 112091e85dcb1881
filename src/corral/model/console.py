"""Scripted console input and screen matching: ``TypeRequest``, ``WaitScreenRequest``."""

from __future__ import annotations

import base64
import binascii
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corral.rfb import KEY_NAMES

#: Most characters one request may type. QEMU passes key events on one per 10 ms, so typing
#: takes 20-45 ms per character (Shift costs two more events).
MAX_TEXT_CHARS = 1024
#: Largest template PNG accepted, in bytes (before base64).
MAX_TEMPLATE_BYTES = 4 * 1024 * 1024
#: Longest wait for an image, in seconds (the HTTP request stays open that long).
MAX_WAIT_S = 600.0

#: Standard base64 with its padding, as ``base64.b64decode(validate=True)`` accepts it.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

_TYPEABLE_CONTROLS = "\n\t"
#: What ``text`` may hold: printable ASCII, newline and tab. The validator checks the same set
#: with a message that names the offending character.
TYPEABLE_PATTERN = r"^[ -~\n\t]*$"


def _any_case(name: str) -> str:
    # JSON Schema patterns have no case-insensitive flag; key names are case-insensitive.
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in name)


# One key: a known name or a single printable character other than '-' and space; a combo
# joins keys with '-' ("ctrl-alt-delete"), or is '-' alone; combos are separated by spaces.
# Longest names first, so that the document's regex reads naturally ("pagedown" before "pgdn").
_KEY = "(?:" + "|".join(_any_case(n) for n in sorted(KEY_NAMES, key=lambda n: (-len(n), n)))
_KEY += r"|[!-,.-~])"
_COMBO = rf"(?:-|(?:{_KEY}-)*{_KEY})"
#: What ``keys`` may hold: each combo ends at spaces or at the end. pydantic checks it at run
#: time, so the document and the server agree on every key name.
KEYS_PATTERN = rf"^ *(?:{_COMBO}(?: +|$))*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TypeRequest(_Strict):
    """Text typed on the VM's keyboard (US layout), then ``keys`` pressed in turn. At least one
    of them must not be empty."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["text"], "properties": {"text": {"minLength": 1}}},
                {
                    "required": ["keys"],
                    "properties": {"keys": {"type": "string", "pattern": "[^ ]"}},
                },
            ]
        }
    )

    text: str = Field(
        default="",
        max_length=MAX_TEXT_CHARS,
        description="printable ASCII; '\\n' presses Enter and '\\t' Tab",
        json_schema_extra={"pattern": TYPEABLE_PATTERN},
    )
    keys: str | None = Field(
        default=None,
        max_length=256,
        pattern=KEYS_PATTERN,
        description="key combinations pressed after the text, separated by spaces: "
        "'enter', 'ctrl-alt-delete', 'ctrl-u enter', 'f2'; a key is a single character or "
        f"one of {', '.join(sorted(KEY_NAMES))}",
    )

    @field_validator("text")
    @classmethod
    def _typeable(cls, text: str) -> str:
        for index, char in enumerate(text):
            if not (" " <= char <= "~" or char in _TYPEABLE_CONTROLS):
                raise ValueError(
                    f"character {char!r} at position {index} cannot be typed: text may hold "
                    "printable ASCII, newline and tab (key presses on a US layout); send other "
                    "keys with 'keys'"
                )
        return text

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.text and not self.combos():
            raise ValueError("give text to type, keys to press, or both")
        return self

    def combos(self) -> list[str]:
        return (self.keys or "").split()


class WaitScreenRequest(_Strict):
    """Wait until a PNG image (e.g. cropped from a screenshot) appears exactly on the screen."""

    image_png_base64: str = Field(
        min_length=1,
        max_length=(MAX_TEMPLATE_BYTES + 2) // 3 * 4,
        pattern=BASE64_PATTERN,
        description=f"the template: an opaque PNG of at most {MAX_TEMPLATE_BYTES // 2**20} MiB "
        "and 4096x4096 pixels, base64-encoded; every pixel must match",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "image/png"},
    )
    timeout_s: float = Field(default=30, gt=0, le=MAX_WAIT_S)

    @field_validator("image_png_base64")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                "not valid base64: encode the PNG file's bytes (e.g. `base64 -w0 image.png`)"
            ) from None
        return value

    def image_png(self) -> bytes:
        return base64.b64decode(self.image_png_base64, validate=True)


class ScreenMatch(BaseModel):
    """Where the image was found (top-left corner, screen pixels) and how long it took."""

    x: int
    y: int
    elapsed_s: float


class ConsoleTicketRequest(_Strict):
    kind: Literal["vnc", "serial"] = Field(
        default="vnc", description="the screen (VNC, for noVNC) or the first serial port"
    )


class ConsoleTicketInfo(BaseModel):
    """Open ``url`` as a WebSocket (subprotocol ``binary``) within ``expires_in_s`` seconds,
    from the same origin and with the same session or token that asked for the ticket."""

    ticket: str
    kind: Literal["vnc", "serial"]
    vm: str
    url: str
    expires_in_s: float
    view_only: bool = Field(description="keyboard, mouse and clipboard input are dropped")
