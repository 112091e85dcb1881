"""``did_you_mean``: the names closest to a mistyped one, or nothing."""

from __future__ import annotations

from corral.model.common import did_you_mean

NAMES = ["web1", "web2", "db1", "debian-12.iso", "mail"]


def test_a_typo_gets_the_closest_names() -> None:
    assert did_you_mean("wbe1", NAMES) == "did you mean 'web1'?"
    assert did_you_mean("web", NAMES) == "did you mean 'web1' or 'web2'?"
    assert did_you_mean("debain-12.iso", NAMES) == "did you mean 'debian-12.iso'?"


def test_case_counts_little_and_the_known_spelling_is_given() -> None:
    assert did_you_mean("DB1", NAMES) == "did you mean 'db1'?"


def test_nothing_close_and_nothing_known_say_nothing() -> None:
    assert did_you_mean("zzzzzz", NAMES) == ""
    assert did_you_mean("web1", []) == ""
