"""Lists the API answers in pages (``{"items": [...], "next_cursor": ...}``): one page, or every
page by following the cursors, with a progress line on stderr."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from corral.cli import context as c
from corral.cli.client import BadAnswer, CorralClient

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")
T = TypeVar("T")

#: The page size of ``--all`` unless ``--limit`` says otherwise: the API's largest.
ALL_PAGE_SIZE = 1000


@dataclass
class Listing:
    """What was fetched: the items as JSON, and the cursor of the page after them (None: none)."""

    items: list[Any]
    next_cursor: str | None

    def json(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}

    def parsed(self, model: type[M]) -> list[M]:
        from pydantic import ValidationError  # not for ``vm list`` (see ``read``)

        try:
            return [model.model_validate(item) for item in self.items]
        except ValidationError as exc:
            raise BadAnswer(
                f"the list's items are not {model.__name__}s ({exc.errors()[0]['msg']}): "
                "are the CLI and the server the same version?"
            ) from None

    def read(self, reader: Callable[[list[Any]], T], expected: str) -> T:
        """The items read without pydantic by ``reader``, which raises ``ValueError("LOC:
        what is wrong")`` where they are not ``expected``."""
        try:
            return reader(self.items)
        except ValueError as exc:
            raise BadAnswer(
                f"the list's items are not a {expected} ({str(exc).lstrip(': ')}): "
                "are the CLI and the server the same version?"
            ) from None


def _page(client: CorralClient, path: str, params: dict[str, Any]) -> tuple[list[Any], Any]:
    body = client.get(path, params).json()
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise BadAnswer(
            f"GET {path} answered something that is not a page of items: "
            "are the CLI and the server the same version?"
        )
    return body["items"], body.get("next_cursor")


def fetch(
    client: CorralClient,
    path: str,
    params: dict[str, Any],
    *,
    limit: int | None,
    cursor: str | None = None,
    every: bool = False,
    what: str = "items",
) -> Listing:
    """One page from ``cursor`` (the first without), or with ``every`` all from there on."""
    size = limit if limit is not None else (ALL_PAGE_SIZE if every else None)
    items: list[Any] = []
    while True:
        got, cursor = _page(client, path, {**params, "limit": size, "cursor": cursor})
        items += got
        if not every or not cursor:
            return Listing(items, cursor or None)
        c.err.print(f"{len(items)} {what} so far…", highlight=False)


def hint_more(listing: Listing, what: str) -> None:
    """On stderr: how to get what this page left out."""
    if listing.next_cursor is not None:
        c.err.print(
            f"more {what} follow: add --all for every page, or --cursor "
            f"{listing.next_cursor} for the next one",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
