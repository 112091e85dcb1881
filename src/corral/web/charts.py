"""Line charts as data for inline SVG (the Content-Security-Policy forbids inline script, not
inline SVG): pure functions from time series to coordinates, axis ticks and markers. The
template draws them; nothing here knows HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

WIDTH = 720
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 10, 24
#: Colours that stay apart for people with the common colour-vision deficiencies (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000")


@dataclass(frozen=True)
class Line:
    name: str
    colour: str
    points: str  # "x,y x,y …" for <polyline points>
    last: str  # the newest value, formatted
    #: Where the newest value is drawn (a dot: a series of one sample has no line to show).
    end_x: float = 0.0
    end_y: float = 0.0


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    colour: str = "#D55E00"


@dataclass
class Chart:
    title: str
    unit: str
    lines: list[Line] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.lines


def _x(at: datetime, since: datetime, until: datetime) -> float:
    span = max((until - since).total_seconds(), 1.0)
    share = (at - since).total_seconds() / span
    return round(LEFT + share * (WIDTH - RIGHT - LEFT), 1)


def _y(value: float, top: float) -> float:
    share = min(max(value / top, 0.0), 1.0) if top > 0 else 0.0
    return round(HEIGHT - BOTTOM - share * (HEIGHT - BOTTOM - TOP), 1)


def _time_ticks(since: datetime, until: datetime) -> list[Tick]:
    span = until - since
    step = next(
        (s for s in (timedelta(minutes=m) for m in (1, 5, 10, 30, 60, 180, 360)) if span / s <= 8),
        timedelta(hours=6),
    )
    first = since.replace(second=0, microsecond=0)
    minutes = int(step.total_seconds() // 60)
    first += timedelta(minutes=(-first.minute) % minutes if minutes < 60 else 0)
    ticks = []
    at = first
    while at <= until:
        if at >= since:
            ticks.append(Tick(_x(at, since, until), at.strftime("%H:%M")))
        at += step
    return ticks


def line_chart(
    title: str,
    unit: str,
    series: dict[str, list[tuple[datetime, float]]],
    since: datetime,
    until: datetime,
    *,
    top: float | None = None,
    fmt: str = "{:.0f}",
) -> Chart:
    """One line per series, time on x from ``since`` to ``until``, 0 to ``top`` on y."""
    values = [v for points in series.values() for _, v in points]
    ceiling = top if top is not None else _nice_ceiling(max(values, default=0.0))
    chart = Chart(title, unit, x_ticks=_time_ticks(since, until))
    chart.y_ticks = [
        Tick(_y(ceiling * i / 4, ceiling), fmt.format(ceiling * i / 4)) for i in range(5)
    ]
    for index, (name, points) in enumerate(sorted(series.items())):
        shown = [(at, v) for at, v in points if since <= at <= until]
        if not shown:
            continue
        coords = " ".join(f"{_x(at, since, until)},{_y(v, ceiling)}" for at, v in shown)
        at, value = shown[-1]
        chart.lines.append(
            Line(
                name,
                PALETTE[index % len(PALETTE)],
                coords,
                fmt.format(value),
                end_x=_x(at, since, until),
                end_y=_y(value, ceiling),
            )
        )
    return chart


def _nice_ceiling(value: float) -> float:
    """1, 2 or 5 times a power of ten, at or above ``value`` (10 at least)."""
    if value <= 10:
        return 10.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def add_markers(
    chart: Chart, events: list[tuple[datetime, str]], since: datetime, until: datetime
) -> None:
    for at, label in events:
        if since <= at <= until:
            chart.markers.append(Marker(_x(at, since, until), label))
