"""A payload as a directory an administrator copies to the host and installs by hand."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from corral.hostsetup.layout import Payload

INSTALL_SH = """\
#!/bin/sh
# Installs Corral's certificates and libvirt configuration on host {name}; run it as root on
# that host from a copy of this directory. It backs up what it replaces, restarts libvirtd with
# TLS, and restores everything if libvirtd does not come back. Then, on the Corral server:
#     corral host add {name} '{uri}'
set -eu
here=$(cd "$(dirname "$0")" && pwd)
umask 077
mkdir -p {staging}
staging=$(mktemp -d {staging}/XXXXXXXX)
cp -R "$here/manifest" "$here/activate.sh" "$here/files" "$here/conf" "$staging/"
status=0
sh "$staging/activate.sh" "$staging" direct 2>"$staging/activate.log" || status=$?
cat "$staging/status" 2>/dev/null
[ $status = 0 ] || tail -n 5 "$staging/activate.log" >&2
rm -rf "$staging"
rmdir {staging} 2>/dev/null || true
exit $status
"""


def bundle_files(
    payload: Payload, name: str, uri: str, staging_root: str
) -> list[tuple[str, bytes, int]]:
    """(relative path, content, mode) of the bundle directory."""
    install = INSTALL_SH.format(name=name, uri=uri, staging=staging_root).encode()
    return [*payload.entries(), ("install.sh", install, 0o700)]


def write_bundle(directory: Path, files: list[tuple[str, bytes, int]]) -> None:
    """Write the bundle; the directory is private (it holds keys) and must be new or empty."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty: choose a new directory for the bundle")
    directory.chmod(0o700)
    for name, data, mode in files:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"bundle entry {name!r} leaves the bundle directory")
        target = directory / relative
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
