"""iproute2 (``ip``, ``bridge``) with JSON output: the only way the agent touches links."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from .protocol import AgentError

#: No single command should take long; a hung one is reported, not waited for.
_SECONDS = 20


def run(*argv: str) -> str:
    """Run an iproute2 command; AgentError quoting the command and what it said."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_SECONDS, check=False, env=_env()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentError(f"`{' '.join(argv)}` could not run: {exc}") from exc
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[:300] or f"exit status {done.returncode}"
        raise AgentError(f"`{' '.join(argv)}` failed: {said}")
    return done.stdout


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}


def _json(*argv: str) -> list[dict[str, Any]]:
    out = run(*argv).strip()
    if not out:
        return []
    data = json.loads(out)
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def links() -> dict[str, dict[str, Any]]:
    """Every link by name, with details (``ip -d``: kind, master, VXLAN id…)."""
    return {link["ifname"]: link for link in _json("ip", "-j", "-d", "link", "show")}


def kind(link: dict[str, Any]) -> str | None:
    info = link.get("linkinfo") or {}
    return info.get("info_kind") if isinstance(info, dict) else None


def vxlan_id(link: dict[str, Any]) -> int | None:
    info = link.get("linkinfo") or {}
    data = info.get("info_data") or {} if isinstance(info, dict) else {}
    return data.get("id") if isinstance(data, dict) else None


def addresses(dev: str) -> list[dict[str, Any]]:
    """The addresses on ``dev`` that belong to the host's configuration (scope global or
    site; link-local addresses stay where the kernel made them)."""
    found = _json("ip", "-j", "addr", "show", "dev", dev)
    infos = found[0].get("addr_info", []) if found else []
    return [a for a in infos if a.get("scope") in ("global", "site")]


def host_addresses() -> set[str]:
    """Every address of the host, on any link."""
    return {
        str(a["local"])
        for link in _json("ip", "-j", "addr", "show")
        for a in link.get("addr_info", [])
    }


def routes(dev: str) -> list[dict[str, Any]]:
    """Routes through ``dev`` someone configured (the kernel's own routes for an address's
    subnet come and go with the address), IPv4 and IPv6, with their family."""
    out = []
    for family in ("-4", "-6"):
        for route in _json("ip", family, "-j", "route", "show", "dev", dev):
            if route.get("protocol") in ("kernel", "ra") or route.get("dst", "").startswith("fe80"):
                continue
            out.append({**route, "family": family})
    return out


def add_address(address: dict[str, Any], dev: str) -> None:
    argv = ["ip", "addr", "add", f"{address['local']}/{address['prefixlen']}", "dev", dev]
    if address.get("broadcast"):
        argv += ["broadcast", str(address["broadcast"])]
    run(*argv)


def del_address(address: dict[str, Any], dev: str) -> None:
    run("ip", "addr", "del", f"{address['local']}/{address['prefixlen']}", "dev", dev)


def add_route(route: dict[str, Any], dev: str) -> None:
    """Re-create a route listed by :func:`routes` on ``dev``."""
    argv = ["ip", str(route.get("family", "-4")), "route", "replace", str(route["dst"])]
    if route.get("gateway"):
        argv += ["via", str(route["gateway"])]
    argv += ["dev", dev]
    for key, word in (("metric", "metric"), ("prefsrc", "src"), ("protocol", "proto")):
        if route.get(key) not in (None, ""):
            argv += [word, str(route[key])]
    if route.get("scope") not in (None, "", "global", "universe"):
        argv += ["scope", str(route["scope"])]
    run(*argv)


def fdb_destinations(dev: str) -> list[str]:
    """The unicast peers of a VXLAN device (its all-zero MAC entries' ``dst``)."""
    entries = _json("bridge", "-j", "fdb", "show", "dev", dev)
    return sorted(
        str(e["dst"]) for e in entries if e.get("mac") == "00:00:00:00:00:00" and e.get("dst")
    )
