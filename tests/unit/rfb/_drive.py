"""Helpers that feed server bytes to an ``RFBConnection`` and collect its events."""

from __future__ import annotations

from collections.abc import Iterable

from corral.rfb import NEED_DATA, PAUSED, ConnectionClosed, Event, RFBConnection


def drain(conn: RFBConnection) -> list[Event]:
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events


def feed(conn: RFBConnection, chunks: Iterable[bytes], eof: bool = False) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events += drain(conn)
    if eof:
        conn.receive_data(b"")
        events += drain(conn)
    return events


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
