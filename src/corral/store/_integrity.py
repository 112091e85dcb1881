"""Turn database constraint violations into Corral's errors, at the store's boundary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corral.errors import Conflict, NotFound


@contextmanager
def conflict_on_integrity(session: Session, explain: Callable[[], str]) -> Iterator[None]:
    """Run the block in a SAVEPOINT and flush; an IntegrityError becomes ``Conflict(explain())``.

    The savepoint keeps the caller's transaction usable after the violation, so a service may
    catch the Conflict and go on. ``explain`` runs after the rollback, so it may query to find
    out which constraint was hit.
    """
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError as exc:
        raise Conflict(explain()) from exc


def not_found(kind: str, key: str, hint: str) -> NotFound:
    """A NotFound with a message a person can act on: ``no VM named 'x'; <hint>``."""
    return NotFound(f"no {kind} {key}; {hint}")
