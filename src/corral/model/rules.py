"""Every regex a request field must match, with the rule it stands for in words: pydantic
reports a mismatch by quoting the regex, people get the sentence (API answers and CLI alike)."""

from __future__ import annotations

from corral.model.common import ABSOLUTE_PATH_PATTERN, NAME_PATTERN, XML_TEXT_PATTERN
from corral.model.console import BASE64_PATTERN, KEYS_PATTERN
from corral.model.host import LIBVIRT_URI_PATTERN, LIBVIRT_URI_RULE
from corral.rfb import KEY_NAMES

NAME_RULE = (
    "must be 1-63 characters from A-Z a-z 0-9 . _ -, start with a letter or digit "
    "and not contain '..'"
)

PATTERN_RULES: dict[str, str] = {
    NAME_PATTERN: NAME_RULE,
    ABSOLUTE_PATH_PATTERN: "must be an absolute path (starting with /), without control characters",
    XML_TEXT_PATTERN: "control characters other than tab, newline and carriage return cannot "
    "be stored here",
    BASE64_PATTERN: "not valid base64: encode the PNG file's bytes (e.g. `base64 -w0 image.png`)",
    LIBVIRT_URI_PATTERN: LIBVIRT_URI_RULE,
    KEYS_PATTERN: "key combinations separated by spaces, keys joined with '-' (e.g. 'ctrl-u "
    "enter'); a key is one printable character or one of " + ", ".join(sorted(KEY_NAMES)),
}


def pattern_rule(err: dict[str, object]) -> str | None:
    """The rule in words for a pydantic ``string_pattern_mismatch`` error, if it is one of ours."""
    if err.get("type") != "string_pattern_mismatch":
        return None
    ctx = err.get("ctx")
    pattern = ctx.get("pattern") if isinstance(ctx, dict) else None
    return PATTERN_RULES.get(pattern) if isinstance(pattern, str) else None
