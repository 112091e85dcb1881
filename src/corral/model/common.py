"""Shared constrained types."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


def _no_dot_dot(value: str) -> str:
    if ".." in value:
        raise ValueError(
            "must be 1-63 characters from A-Z a-z 0-9 . _ -, start with a letter or digit "
            "and not contain '..'"
        )
    return value


#: Names of VMs, disks, snapshots, hosts, users: 1-63 characters from ``[A-Za-z0-9._-]``, starting
#: with a letter or digit and never containing ``..`` (they become file and volume names).
Name = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=63),
    AfterValidator(_no_dot_dot),
]

#: Free text shown to people (VM descriptions). Any characters; XML escaping is lxml's job.
Description = Annotated[str, StringConstraints(max_length=1024)]
