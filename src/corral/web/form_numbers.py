"""Numbers typed into forms, read strictly: ASCII digits (and one decimal point where a
fraction makes sense), nothing else.

Python's ``int()`` takes "٣" and pydantic's lax mode takes "+3", " 12" or "1_024"; ``str.isdigit``
says yes to "²", which ``int()`` then refuses (a 500 once). A form field is a person's input: it
either reads as the number they see or is refused with a sentence saying what to type.
"""

from __future__ import annotations

import re

_WHOLE = re.compile(r"[0-9]{1,12}")
_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")

WHOLE_RULE = "give a whole number (digits 0-9 only)"
DECIMAL_RULE = "give a number (digits 0-9, optionally one '.' and decimals)"


def whole_error(text: str) -> str | None:
    """Why ``text`` is not a whole number, or None (blank counts as given nothing)."""
    value = text.strip()
    return None if not value or _WHOLE.fullmatch(value) else WHOLE_RULE


def decimal_error(text: str) -> str | None:
    value = text.strip()
    return None if not value or _DECIMAL.fullmatch(value) else DECIMAL_RULE


# Sizes in forms are numbers in the unit their label names, as everywhere a bare number is:
# MiB for memory, GiB for disks (the API's memory_mib and size_gib; the CLI's bare numbers).
MIB_RULE = "give a whole number of MiB (digits 0-9 only; 2048 for 2 GiB)"
GIB_RULE = "give a number of GiB (digits 0-9, optionally one '.' and decimals; 0.5 for 512 MiB)"


def mib_error(text: str) -> str | None:
    """Why ``text`` is not a memory size in MiB, or None."""
    return None if whole_error(text) is None else MIB_RULE


def gib_error(text: str) -> str | None:
    """Why ``text`` is not a disk size in GiB, or None."""
    return None if decimal_error(text) is None else GIB_RULE
