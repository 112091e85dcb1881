"""The audit log."""

from __future__ import annotations

import pytest

from corral.errors import InvalidRequest
from corral.store import Store, append_audit, list_audit


def test_append_and_list_newest_first(store: Store) -> None:
    with store.session() as s:
        append_audit(s, user="alice", action="vm.create", target="web", outcome="ok")
        append_audit(s, user="bob", action="vm.delete", target="web", outcome="denied")
        append_audit(
            s, user="alice", action="vm.start", target="db", outcome="error: no memory", detail="d"
        )
    with store.session() as s:
        entries = list_audit(s)
    assert [(e.user, e.action, e.outcome) for e in entries] == [
        ("alice", "vm.start", "error: no memory"),
        ("bob", "vm.delete", "denied"),
        ("alice", "vm.create", "ok"),
    ]
    assert entries[0].detail == "d" and entries[0].at.tzinfo is not None
    assert entries[0].id > entries[1].id > entries[2].id


def test_filters_and_limit(store: Store) -> None:
    with store.session() as s:
        for i in range(6):
            user = "alice" if i % 2 else "bob"
            append_audit(s, user=user, action=f"a{i % 3}", target=str(i), outcome="ok")
    with store.session() as s:
        assert [e.target for e in list_audit(s, limit=2)] == ["5", "4"]
        assert [e.target for e in list_audit(s, user="alice")] == ["5", "3", "1"]
        assert [e.target for e in list_audit(s, action="a0")] == ["3", "0"]
        assert [e.target for e in list_audit(s, user="bob", action="a1")] == ["4"]
        assert list_audit(s, user="nobody") == []


def test_outcome_is_checked(store: Store) -> None:
    with store.session() as s, pytest.raises(InvalidRequest, match="outcome"):
        append_audit(s, user="a", action="x", target="t", outcome="fine")


def test_long_fields_are_cut_not_refused(store: Store) -> None:
    long = "e" * 5000
    with store.session() as s:
        entry = append_audit(
            s, user="u" * 100, action="x", target="t" * 300, outcome="error: " + long, detail=long
        )
    assert len(entry.target) == 255 and len(entry.outcome) == 1024 and entry.detail == long
    with store.session() as s:
        [stored] = list_audit(s)
    assert stored.outcome == entry.outcome and len(stored.user) == 63
