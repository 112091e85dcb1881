"""``last_lines``: the end of a serial log by lines, read backwards in growing pieces."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from corral.virt._transfer import last_lines


def _reference(data: bytes, lines: int) -> bytes:
    parts = data.split(b"\n")
    if data.endswith(b"\n"):
        parts = [*parts[:-1][-lines:], b""]
        return b"\n".join(parts)
    return b"\n".join(parts[-lines:])


def _reader(data: bytes, reads: list[tuple[int, int]]) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return data[offset : offset + length]

    return read


@given(
    data=st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n")),
    lines=st.integers(1, 20),
    first_read=st.integers(1, 64),
)
def test_last_lines_match_the_lines_of_the_whole(data: bytes, lines: int, first_read: int) -> None:
    reads: list[tuple[int, int]] = []
    got = last_lines(_reader(data, reads), len(data), lines, first_read=first_read)
    assert got == _reference(data, lines)


def test_a_short_tail_of_a_long_log_reads_only_its_end() -> None:
    data = b"".join(b"heartbeat %d\r\n" % i for i in range(100_000))
    reads: list[tuple[int, int]] = []
    got = last_lines(_reader(data, reads), len(data), 2)
    assert got == b"heartbeat 99998\r\nheartbeat 99999\r\n"
    assert reads == [(len(data) - 64 * 1024, 64 * 1024)]


def test_a_log_without_line_ends_stops_at_the_limit() -> None:
    data = b"x" * 1000
    got = last_lines(_reader(data, []), len(data), 3, limit=100, first_read=10)
    assert got == b"x" * 100


def test_an_empty_log_is_empty() -> None:
    assert last_lines(_reader(b"", []), 0, 5) == b""
