"""Caps on long-lived streams: consoles and console tickets per user and per VM, event streams
per user.

A console costs the manager a socket and, for VNC, one of QEMU's client slots on the VM (QEMU's
VNC server takes 32 clients and refuses the rest: operators' consoles, typing and screenshots
among them). So consoles are counted from the moment their socket is accepted (half-open ones
included): per user (every kind together) and per VM and kind. View-only consoles may fill a
VM's count only up to a reserve kept for those who may type (operators and admins). Tickets
waiting to be used are counted the same way. Over a cap: ``RateLimited`` (429) saying which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from corral.errors import RateLimited


@dataclass(frozen=True)
class ConsoleCaps:
    """``per_user`` consoles (or tickets) of one user; ``per_vm`` of one VM and console kind,
    of which the last ``writer_reserve`` only for writers."""

    per_user: int
    per_vm: int
    writer_reserve: int

    def check(self, held: Sequence[Holder], new: Holder, what: str, remedy: str) -> None:
        """RateLimited when ``new`` would go over a cap, given what is ``held`` already;
        ``what`` names one held thing ("open console"), ``remedy`` says what the user can do."""
        mine = sum(1 for h in held if h.user == new.user)
        if mine >= self.per_user:
            raise RateLimited(
                f"user {new.user!r} already holds {mine} {what}s, the most allowed at a time "
                f"(at most {self.per_user}): {remedy}"
            )
        on_vm = sum(1 for h in held if h.vm == new.vm and h.kind == new.kind)
        limit = self.per_vm if new.writer else self.per_vm - self.writer_reserve
        if on_vm >= limit:
            whom = (
                ""
                if new.writer
                else f" for view-only users; the last {self.writer_reserve} are kept for "
                "operators and admins"
            )
            raise RateLimited(
                f"VM {new.vm!r} already has {on_vm} {what}s of kind {new.kind} (at most "
                f"{limit}{whom}): try again once one has closed"
            )


@dataclass(frozen=True, eq=False)
class Holder:
    """Who holds one stream: compared by identity (one user may hold several)."""

    user: str
    vm: str = ""
    kind: str = ""
    writer: bool = False


class OpenStreams:
    """The streams of one sort open in this process, admitted by ``check``."""

    def __init__(self, check: Callable[[Sequence[Holder], Holder], None]) -> None:
        self._check = check
        self._held: list[Holder] = []

    def check(self, holder: Holder) -> None:
        """RateLimited if ``holder`` would be refused now (nothing is counted)."""
        self._check(self._held, holder)

    def claim(self, holder: Holder) -> Callable[[], None]:
        """Count ``holder`` until the returned function (idempotent) is called; RateLimited
        (and nothing counted) over a cap."""
        self._check(self._held, holder)
        self._held.append(holder)

        def release() -> None:
            if holder in self._held:
                self._held.remove(holder)

        return release

    @contextmanager
    def hold(self, holder: Holder) -> Iterator[None]:
        """Count ``holder`` while the block runs; RateLimited (and nothing held) over a cap."""
        release = self.claim(holder)
        try:
            yield
        finally:
            release()

    def held(self) -> list[Holder]:
        return list(self._held)


def per_user_cap(limit: int, what: str) -> Callable[[Sequence[Holder], Holder], None]:
    """A check for streams capped per user only (the event stream)."""

    def check(held: Sequence[Holder], new: Holder) -> None:
        mine = sum(1 for h in held if h.user == new.user)
        if mine >= limit:
            raise RateLimited(
                f"user {new.user!r} already has {mine} {what}s open (at most {limit}): close "
                "a page or tab that has one, then try again"
            )

    return check
