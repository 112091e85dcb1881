"""Caps on consoles, console tickets and event streams: per user, per VM and kind, and the
reserve view-only users never fill."""

from __future__ import annotations

import pytest

from corral.errors import RateLimited
from corral.services.stream_caps import ConsoleCaps, Holder, OpenStreams, per_user_cap

CAPS = ConsoleCaps(per_user=3, per_vm=5, writer_reserve=2)


def _consoles() -> OpenStreams:
    return OpenStreams(lambda held, new: CAPS.check(held, new, "open console", "close one"))


def test_a_user_holds_at_most_per_user_consoles_of_every_kind_together() -> None:
    consoles = _consoles()
    consoles.claim(Holder("eve", "vm1", "vnc"))
    consoles.claim(Holder("eve", "vm2", "serial"))
    release = consoles.claim(Holder("eve", "vm3", "vnc"))
    with pytest.raises(
        RateLimited, match=r"'eve' already holds 3 open consoles, .*\(at most 3\): close one$"
    ):
        consoles.claim(Holder("eve", "vm4", "vnc"))
    consoles.claim(Holder("bob", "vm4", "vnc"))  # others are not affected
    release()
    release()  # idempotent: the second call frees nothing more
    consoles.claim(Holder("eve", "vm4", "vnc"))
    assert len(consoles.held()) == 4


def test_viewers_never_fill_a_vms_writer_reserve() -> None:
    consoles = _consoles()
    for n in range(3):  # per_vm - writer_reserve
        consoles.claim(Holder(f"viewer{n}", "vm1", "vnc"))
    with pytest.raises(
        RateLimited,
        match=r"VM 'vm1' already has 3 open consoles of kind vnc \(at most 3 for view-only "
        r"users; the last 2 are kept",
    ):
        consoles.claim(Holder("viewer9", "vm1", "vnc"))
    consoles.claim(Holder("viewer9", "vm1", "serial"))  # another kind: counted apart
    consoles.claim(Holder("op1", "vm1", "vnc", writer=True))
    consoles.claim(Holder("op2", "vm1", "vnc", writer=True))
    with pytest.raises(RateLimited, match=r"at most 5\)"):
        consoles.claim(Holder("op3", "vm1", "vnc", writer=True))


def test_hold_releases_on_the_way_out_and_holds_nothing_when_refused() -> None:
    consoles = _consoles()
    with consoles.hold(Holder("eve", "vm1", "vnc")):
        assert len(consoles.held()) == 1
    assert consoles.held() == []
    for _ in range(3):
        consoles.claim(Holder("eve", "vm1", "vnc"))
    with pytest.raises(RateLimited), consoles.hold(Holder("eve", "vm1", "vnc")):
        pass
    assert len(consoles.held()) == 3


def test_event_streams_are_capped_per_user() -> None:
    streams = OpenStreams(per_user_cap(2, "event stream"))
    streams.claim(Holder("eve"))
    streams.claim(Holder("eve"))
    with pytest.raises(RateLimited, match=r"'eve' already has 2 event streams open \(at most 2"):
        streams.claim(Holder("eve"))
    streams.claim(Holder("bob"))
