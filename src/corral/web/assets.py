"""Static files: Corral's own (``web/static``) and the pinned npm packages it serves."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

#: URL name under ``/vendor/`` -> directory inside ``node_modules``. Only these are served,
#: never the whole of node_modules.
VENDOR_PACKAGES: dict[str, str] = {
    "swagger-ui": "swagger-ui-dist",
    "htmx": "htmx.org/dist",
    "pico": "@picocss/pico",
    "novnc": "@novnc/novnc",
    "xterm": "@xterm/xterm",
    "xterm-fit": "@xterm/addon-fit/lib",
}


def default_node_modules() -> Path:
    """``node_modules`` of the source checkout this package runs from (``make run``)."""
    return Path(__file__).resolve().parents[3] / "node_modules"


def vendor_dir(node_modules: Path, name: str) -> Path:
    return node_modules / VENDOR_PACKAGES[name]


def mount_assets(app: FastAPI, node_modules: Path) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for name, relative in VENDOR_PACKAGES.items():
        # check_dir=False: a missing package answers 404 per file instead of failing start-up.
        files = StaticFiles(directory=node_modules / relative, check_dir=False)
        app.mount(f"/vendor/{name}", files, name=f"vendor-{name}")
