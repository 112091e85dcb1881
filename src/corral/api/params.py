"""Path and query parameters that name objects: the same rules as the names in request bodies,
so the document tells clients (and fuzzers) which values can exist at all."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from corral.model.common import NAME_MAX_LENGTH, NAME_PATTERN
from corral.model.page import MAX_LIMIT
from corral.model.rules import NAME_RULE as _NAME_RULE

#: A VM, host, user or snapshot name in a path.
NamePath = Annotated[
    str,
    Path(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN, description=_NAME_RULE),
]

#: A host name as a query filter.
NameQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN, description=_NAME_RULE),
]

#: Task and token ids: Corral issues 32 lowercase hex digits.
IdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex digits")]

#: A volume of Corral's pool in a path: letters, digits, ``_ . + -``, not starting with a dot
#: (libvirt's directory pools take any file name; these are the ones Corral makes).
VolumePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$",
        description="a volume name: letters, digits, `_ . + -`, not starting with a dot",
    ),
]

#: How many items a page holds.
LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page, 1..{MAX_LIMIT}")
]

#: Where the next page starts: a previous page's ``next_cursor``, with the same filters and sort.
CursorQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=2048,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="a previous page's `next_cursor`, sent with the same filters and sort "
        "(another query's cursor is refused with 422)",
    ),
]

#: The start of a name (letters, digits, ``. _ -``).
NamePrefixQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="only names starting with this",
    ),
]
