"""Fetching and unpacking Debian packages, and ordering kernel modules by their dependencies.

Only the ordinary apt clients are used (``apt-cache``, ``apt-get download``, ``dpkg-deb -x``): no
root file system is assembled with debootstrap and nothing is installed on the host.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from corral.errors import HostError

_DEPENDS_RE = re.compile(rb"(?:^|\0)depends=([^\0]*)\0")


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a build tool; a failure becomes a HostError that names the command and its stderr."""
    full_env = {**os.environ, **env} if env else None
    try:
        done = subprocess.run(
            cmd, cwd=cwd, env=full_env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise HostError(
            f"{cmd[0]} is not installed: run scripts/setup.sh (it installs the Debian packages"
            " listed in scripts/apt-packages.txt)"
        ) from exc
    if done.returncode != 0:
        raise HostError(
            f"{' '.join(cmd)} failed with exit status {done.returncode}: {done.stderr.strip()}"
        )
    return done.stdout


def real_package(metapackage: str) -> str:
    """The package a metapackage depends on, e.g. the versioned kernel behind linux-image-cloud."""
    out = run(["apt-cache", "depends", metapackage])
    for line in out.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Depends" and value.strip().startswith("linux-image-"):
            return value.strip()
    raise HostError(
        f"apt-cache depends {metapackage} names no linux-image package: run apt-get update"
    )


def candidate_versions(packages: list[str]) -> dict[str, str]:
    """The version apt would fetch for each package (``apt-cache policy``'s Candidate)."""
    out = run(["apt-cache", "policy", *packages])
    versions: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
        elif line.strip().startswith("Candidate:") and current:
            versions[current] = line.split(":", 1)[1].strip()
    missing = [p for p in packages if versions.get(p, "(none)") == "(none)"]
    if missing:
        raise HostError(f"apt knows no version of {', '.join(missing)}: run apt-get update")
    return versions


def fetch(package: str, version: str, cache_dir: Path) -> Path:
    """Download ``package=version`` once into ``cache_dir`` and return the .deb path."""
    target = cache_dir / f"{package}_{version.replace(':', '%3a')}"
    debs = sorted(target.glob("*.deb"))
    if debs:
        return debs[0]
    target.mkdir(parents=True, exist_ok=True)
    # As root apt drops to the _apt user, which cannot write into our build dir: keep root.
    run(
        ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"{package}={version}"],
        cwd=target,
    )
    debs = sorted(target.glob("*.deb"))
    if not debs:
        raise HostError(f"apt-get download {package}={version} produced no .deb in {target}")
    return debs[0]


def extract(deb: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(dest)])
    return dest


def module_index(tree: Path) -> dict[str, Path]:
    """Kernel modules under ``tree/lib/modules`` by module name (``-`` and ``_`` are equal)."""
    return {
        path.name.removesuffix(".ko").replace("-", "_"): path
        for path in sorted(tree.glob("lib/modules/*/kernel/**/*.ko"))
    }


def module_depends(module: Path) -> list[str]:
    """The ``depends=`` field of a module's .modinfo section."""
    match = _DEPENDS_RE.search(module.read_bytes())
    if match is None or not match.group(1):
        return []
    return [name.replace("-", "_") for name in match.group(1).decode().split(",")]


def module_load_order(index: dict[str, Path], wanted: list[str]) -> list[str]:
    """``wanted`` plus everything they need, each module after its dependencies."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name not in index:
            raise HostError(f"kernel module {name} is not in the kernel package")
        if name in visiting:
            raise HostError(f"kernel module {name} depends on itself")
        visiting.add(name)
        for dep in module_depends(index[name]):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order
