"""The ``corral`` command: an HTTP client of the API (see ``main.py``)."""

import sys

# ``import httpx`` also imports httpx's own command-line tool (``httpx._main``: click, pygments,
# rich.syntax, about 0.1 s) whenever click and rich are installed, as they are here; Corral never
# runs it. A ``None`` entry makes that import fail the way httpx expects without them (it then
# defines a stub ``httpx.main``). No effect if httpx was imported first (a test process).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
