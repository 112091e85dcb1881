"""The import rules of docs/architecture.md, checked on the source (``ast``, nothing imported).

Each rule names who may not import what; a failure lists every offending ``module: import``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

#: Imports that mean I/O (files, sockets, processes, databases, hosts, HTTP).
IO_MODULES = frozenset(
    {
        "asyncio",
        "io",
        "os",
        "pathlib",
        "shutil",
        "socket",
        "ssl",
        "select",
        "selectors",
        "subprocess",
        "tempfile",
        "urllib",
        "http",
        "httpx",
        "sqlalchemy",
        "alembic",
        "libvirt",
        "libvirtaio",
        "libvirt_qemu",
        "fastapi",
        "starlette",
        "uvicorn",
    }
)
#: Corral's rooms that do I/O or sit above the pure ones.
IO_ROOMS = (
    "corral.store",
    "corral.virt",
    "corral.services",
    "corral.api",
    "corral.web",
    "corral.http",
    "corral.cli",
    "corral.pki",
    "corral.hostsetup",
    "corral.hostagent",
    "corral.testbed",
    "corral.config",
    "corral.serving",
    "corral.metrics",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path, module: str) -> Iterator[str]:
    """Every module an import statement in the file names (``from a import b`` gives ``a`` and
    ``a.b``: b may be a submodule)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _imports() -> dict[str, set[str]]:
    return {
        _module_name(path): set(_imported(path, _module_name(path)))
        for path in sorted((SRC / "corral").rglob("*.py"))
    }


IMPORTS = _imports()


def _within(name: str, *rooms: str) -> bool:
    return any(name == room or name.startswith(room + ".") for room in rooms)


def _modules(*rooms: str, but: tuple[str, ...] = ()) -> set[str]:
    return {m for m in IMPORTS if _within(m, *rooms) and m not in but}


def _offences(importers: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module}: {name}"
        for module in importers
        for name in IMPORTS[module]
        if _within(name, *forbidden)
    )


def test_the_source_tree_was_read() -> None:
    # Guards the checks below against passing on an empty walk.
    assert {"corral.api.app", "corral.web.pages.vms", "corral.virt", "corral.http"} <= set(IMPORTS)
    assert "corral.web.pages.vms" in IMPORTS["corral.api.app"]


@pytest.mark.parametrize(
    ("importers", "forbidden", "why"),
    [
        (("corral.web",), ("corral.api",), "api/app.py mounts web/; web/ never imports api/"),
        (("corral.http",), ("corral.api", "corral.web"), "http/ sits below api/ and web/"),
        (
            ("corral.api", "corral.web", "corral.http"),
            ("corral.store", "corral.virt"),
            "the API and the pages go through services/",
        ),
        (
            ("corral.model", "corral.placement"),
            IO_ROOMS + tuple(IO_MODULES),
            "model/ and placement/ do no I/O",
        ),
        (
            (
                "corral.store",
                "corral.virt",
                "corral.model",
                "corral.placement",
                "corral.pki",
                "corral.rfb",
                "corral.hostsetup",
                "corral.testbed",
                "corral.http",
                "corral.cloudinit",
            ),
            ("corral.services", "corral.api", "corral.web", "corral.cli"),
            "the lower rooms never import the rooms that use them",
        ),
        (
            ("corral.services",),
            ("corral.api", "corral.web", "corral.cli"),
            "services/ know no door",
        ),
    ],
    ids=["web-api", "http-below", "doors-via-services", "pure-no-io", "lower-rooms", "services"],
)
def test_imports_point_one_way(
    importers: tuple[str, ...], forbidden: tuple[str, ...], why: str
) -> None:
    assert _offences(_modules(*importers), forbidden) == [], why


def test_only_virt_imports_libvirt() -> None:
    libvirt = ("libvirt", "libvirtaio", "libvirt_qemu", "libvirt_lxc")
    offences = _offences(set(IMPORTS) - _modules("corral.virt"), libvirt)
    assert offences == [], "virt/ is the only package that imports libvirt"


def test_rfb_imports_nothing_else_from_corral() -> None:
    offences = [
        o
        for o in _offences(_modules("corral.rfb"), ("corral",))
        if not _within(o.split(": ")[1], "corral.rfb")
    ]
    assert offences == [], "rfb/ is a standalone library"


def test_the_host_agent_imports_nothing_else_from_corral() -> None:
    """It runs alone on hosts (a zip of its own sources, stdlib only)."""
    offences = [
        o
        for o in _offences(_modules("corral.hostagent"), ("corral",))
        if not _within(o.split(": ")[1], "corral.hostagent")
    ]
    assert offences == [], "hostagent/ ships alone to hosts"


def test_only_the_app_assembly_mounts_the_web_pages() -> None:
    assert _offences(_modules("corral.api", but=("corral.api.app",)), ("corral.web",)) == []


def test_the_cli_speaks_http_but_for_its_offline_commands() -> None:
    """``corral admin`` initialises a fresh installation offline (database, first admin, CA);
    ``corral serve`` starts the server itself. Every other command goes through the API."""
    offline = ("corral.cli.admin", "corral.cli.serve")
    inside = ("corral.store", "corral.virt", "corral.services", "corral.api")
    assert _offences(_modules("corral.cli", but=offline), inside) == []
    assert _offences(_modules("corral.cli"), ("corral.virt", "corral.web")) == []
    assert _offences({"corral.cli.serve"}, ("corral.store", "corral.services")) == []


def test_a_wrong_way_import_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "corral" / "web" / "page.py"
    page.parent.mkdir(parents=True)
    page.write_text("from corral.api.problems import problem\nfrom . import sibling\n")
    names = set(_imported(page, "corral.web.page"))
    assert "corral.api.problems" in names and "corral.web.sibling" in names


def test_the_map_names_every_room() -> None:
    """docs/architecture.md's table of rooms lists every package and module of ``corral``."""
    doc = (SRC.parent / "docs" / "architecture.md").read_text()
    rows = {line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| `")}
    rooms = {
        f"`{p.name}/`" if p.is_dir() else f"`{p.name}`"
        for p in (SRC / "corral").iterdir()
        if p.name not in ("__init__.py", "__pycache__", "py.typed")
    }
    assert {"`virt/`", "`serving.py`"} <= rooms
    assert rooms - rows == set(), "add the room to the table in docs/architecture.md"
    assert "../shared/" not in doc
