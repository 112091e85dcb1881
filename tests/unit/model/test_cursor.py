"""Page cursors: what one query issues only that query takes back, and paging a list."""

from __future__ import annotations

import pytest

from corral.errors import InvalidRequest
from corral.model.cursor import decode_cursor, encode_cursor, page_of, query_digest


def test_a_cursor_comes_back_to_its_own_query() -> None:
    digest = query_digest("vms", sort="name", host="h1")
    cursor = encode_cursor(digest, ("web7", 3))
    assert decode_cursor(cursor, digest, 2) == ("web7", 3)
    assert "web7" not in cursor  # opaque, and safe in a URL
    assert cursor.replace("-", "").replace("_", "").isalnum()


def test_none_filters_count_as_absent() -> None:
    assert query_digest("vms", sort="name", host=None) == query_digest("vms", sort="name")
    assert query_digest("vms", sort="name") != query_digest("tasks", sort="name")


@pytest.mark.parametrize(
    ("cursor_for", "why"),
    [
        (query_digest("vms", sort="name", host="h2"), "another query"),
        (query_digest("vms", sort="-name", host="h1"), "another query"),
    ],
)
def test_another_querys_cursor_is_refused(cursor_for: str, why: str) -> None:
    cursor = encode_cursor(cursor_for, ("web7",))
    with pytest.raises(InvalidRequest, match=why):
        decode_cursor(cursor, query_digest("vms", sort="name", host="h1"), 1)


@pytest.mark.parametrize("forged", ["", "x", "AAAA", "not-base64!", "eyJhIjoxfQ"])
def test_a_cursor_corral_did_not_issue_is_refused(forged: str) -> None:
    with pytest.raises(InvalidRequest, match="not a cursor Corral issued"):
        decode_cursor(forged, query_digest("vms"), 1)


def test_an_edited_or_cut_cursor_is_refused() -> None:
    digest = query_digest("vms")
    cursor = encode_cursor(digest, ("web7",))
    edited = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    for bad in (edited, cursor[:-2]):
        with pytest.raises(InvalidRequest, match="not a cursor Corral issued"):
            decode_cursor(bad, digest, 1)


def test_a_key_of_another_shape_is_refused() -> None:
    digest = query_digest("vms")
    with pytest.raises(InvalidRequest):
        decode_cursor(encode_cursor(digest, ("a", "b")), digest, 1)
    with pytest.raises(InvalidRequest):
        page_of(["a", "b"], lambda s: (s,), descending=False, limit=1, after=(3,))


@pytest.mark.parametrize("descending", [False, True])
def test_pages_cover_the_list_once_in_order(descending: bool) -> None:
    items = [f"vm{i:02d}" for i in range(23)]
    seen: list[str] = []
    after = None
    while True:
        page, after = page_of(items, lambda s: (s,), descending=descending, limit=5, after=after)
        seen += page
        if after is None:
            break
        assert len(page) == 5
    assert seen == sorted(items, reverse=descending)


def test_an_exactly_full_last_page_has_no_cursor() -> None:
    page, after = page_of(["a", "b"], lambda s: (s,), descending=False, limit=2, after=None)
    assert page == ["a", "b"] and after is None
