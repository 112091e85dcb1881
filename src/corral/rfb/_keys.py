"""Key names, X11 keysyms and XT scancodes (US layout) for key events and typing text."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import LocalProtocolError


@dataclass(frozen=True, slots=True)
class Key:
    """One key: X11 keysym, XT scancode (0 if unknown; 0xE0-prefixed as 0x80|code), shift."""

    keysym: int
    scancode: int
    shift: bool = False


SHIFT = Key(0xFFE1, 0x2A)

_NAMED: dict[str, Key] = {
    "enter": Key(0xFF0D, 0x1C),
    "return": Key(0xFF0D, 0x1C),
    "tab": Key(0xFF09, 0x0F),
    "backspace": Key(0xFF08, 0x0E),
    "bsp": Key(0xFF08, 0x0E),
    "esc": Key(0xFF1B, 0x01),
    "escape": Key(0xFF1B, 0x01),
    "space": Key(0x20, 0x39),
    "spacebar": Key(0x20, 0x39),
    "delete": Key(0xFFFF, 0xD3),
    "del": Key(0xFFFF, 0xD3),
    "insert": Key(0xFF63, 0xD2),
    "ins": Key(0xFF63, 0xD2),
    "home": Key(0xFF50, 0xC7),
    "end": Key(0xFF57, 0xCF),
    "pgup": Key(0xFF55, 0xC9),
    "pageup": Key(0xFF55, 0xC9),
    "pgdn": Key(0xFF56, 0xD1),
    "pagedown": Key(0xFF56, 0xD1),
    "left": Key(0xFF51, 0xCB),
    "up": Key(0xFF52, 0xC8),
    "right": Key(0xFF53, 0xCD),
    "down": Key(0xFF54, 0xD0),
    "shift": SHIFT,
    "lshift": SHIFT,
    "rshift": Key(0xFFE2, 0x36),
    "ctrl": Key(0xFFE3, 0x1D),
    "lctrl": Key(0xFFE3, 0x1D),
    "rctrl": Key(0xFFE4, 0x9D),
    "alt": Key(0xFFE9, 0x38),
    "lalt": Key(0xFFE9, 0x38),
    "ralt": Key(0xFFEA, 0xB8),
    "super": Key(0xFFEB, 0xDB),
    "meta": Key(0xFFEB, 0xDB),
    "menu": Key(0xFF67, 0xDD),
    "capslock": Key(0xFFE5, 0x3A),
    "sysrq": Key(0xFF61, 0xB7),
}
_NAMED.update({f"f{i}": Key(0xFFBE + i - 1, 0x3B + i - 1) for i in range(1, 11)})
_NAMED.update({"f11": Key(0xFFC8, 0x57), "f12": Key(0xFFC9, 0x58)})

#: Names ``parse_combo`` knows (case-insensitive), besides single characters.
KEY_NAMES: frozenset[str] = frozenset(_NAMED)

_ROWS = (
    ("1234567890-=", "!@#$%^&*()_+", 0x02),
    ("qwertyuiop[]", "QWERTYUIOP{}", 0x10),
    ("asdfghjkl;'`", 'ASDFGHJKL:"~', 0x1E),
    ("\\zxcvbnm,./", "|ZXCVBNM<>?", 0x2B),
)
_CHARS: dict[str, Key] = {" ": _NAMED["space"], "\n": _NAMED["enter"], "\t": _NAMED["tab"]}
for _plain, _shifted, _first in _ROWS:
    for _i, (_p, _s) in enumerate(zip(_plain, _shifted, strict=True)):
        _CHARS[_p] = Key(ord(_p), _first + _i)
        _CHARS[_s] = Key(ord(_s), _first + _i, shift=True)


def key_for_char(char: str) -> Key:
    """The key that types ``char`` on a US layout (keysym only for other characters)."""
    key = _CHARS.get(char)
    if key is not None:
        return key
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        raise LocalProtocolError(f"cannot type the control character {char!r}; use press()")
    return Key(code if code <= 0xFF else 0x01000000 | code, 0)


def parse_combo(combo: str) -> list[Key]:
    """Keys of a combination like ``"ctrl-alt-delete"``, ``"enter"`` or ``"A"``."""
    keys = []
    parts = [combo] if len(combo) == 1 else combo.split("-")
    for part in parts:
        if not part:
            # "ctrl-" or "a--b": a dash must join two keys ("-" alone is the minus key).
            raise LocalProtocolError(f"empty key name in {combo!r}: join keys with one '-'")
        key = _NAMED.get(part.lower()) if len(part) > 1 else key_for_char(part)
        if key is None:
            raise LocalProtocolError(
                f"unknown key {part!r} in {combo!r}: use a single character or one of "
                f"{', '.join(sorted(_NAMED))}"
            )
        keys.append(key)
    return keys
