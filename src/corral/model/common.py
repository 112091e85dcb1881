"""Shared constrained types."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import StringConstraints

#: Characters from ``[A-Za-z0-9._-]``, a letter or digit first, never two dots in a row: every
#: dot is followed by another character or ends the name. One regex that pydantic, JSON Schema
#: (the OpenAPI document) and the fuzzers all read the same way, so it spells "no '..'" without
#: a look-ahead. The length (1-63) is a separate constraint.
NAME_PATTERN = r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?$"
NAME_MAX_LENGTH = 63

_NAME = re.compile(NAME_PATTERN)


def is_name(value: str) -> bool:
    """True for a valid ``Name`` (for names that come from libvirt rather than a request)."""
    return len(value) <= NAME_MAX_LENGTH and _NAME.match(value) is not None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``did you mean 'web1'?`` naming the few of ``known`` closest to a mistyped ``name``
    (difflib's similarity; case counts little), or "" when none is close. Only for names the
    asker may list anyway: the answer reveals them."""
    by_folded: dict[str, str] = {}
    for candidate in known:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = name.casefold()
    close = difflib.get_close_matches(folded, list(by_folded), n=3, cutoff=0.6)
    if not close:
        return ""
    # Closest first; equally close ones in alphabetical order (difflib gives them reversed).
    close.sort(key=lambda c: (-difflib.SequenceMatcher(None, folded, c).ratio(), c))
    return "did you mean " + " or ".join(repr(by_folded[c]) for c in close) + "?"


#: Names of VMs, disks, snapshots, hosts, users: 1-63 characters from ``[A-Za-z0-9._-]``, starting
#: with a letter or digit and never containing ``..`` (they become file and volume names).
Name = Annotated[
    str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=NAME_MAX_LENGTH)
]

#: An absolute path on the host (ISO, kernel, image to import): it starts with ``/`` and holds
#: no control characters (they end up in libvirt's XML, which cannot carry them, and a NUL
#: cannot be in a path at all).
ABSOLUTE_PATH_PATTERN = r"^/[^\x00-\x1f\x7f\ufffe\uffff]*$"

#: Text that XML 1.0 can carry (libvirt keeps it in XML): no control characters but tab, newline
#: and carriage return.
XML_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$"

AbsolutePath = Annotated[
    str, StringConstraints(pattern=ABSOLUTE_PATH_PATTERN, min_length=1, max_length=4096)
]

#: Free text shown to people (VM descriptions). Any characters; XML escaping is lxml's job, and
#: what XML cannot carry goes into Corral's metadata (see virt.domain_xml.metadata).
Description = Annotated[str, StringConstraints(max_length=1024)]

#: Free text libvirt keeps in XML as it is (snapshot descriptions, kernel command lines).
XmlText = Annotated[str, StringConstraints(max_length=4096, pattern=XML_TEXT_PATTERN)]
