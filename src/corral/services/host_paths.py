"""Which files on a host a caller may name by absolute path.

Fields that take a host path (a disk's ``import_path``, the boot kernel and initrd, a CD-ROM
path) make Corral or libvirt read — and libvirt relabel — that file as root. So:

* non-admins never name a host path: they name images of the library and volumes of Corral's
  pools. They are refused before the path is looked at, so a missing file answers exactly like
  a forbidden one (no existence oracle);
* admins only under ``host_path_roots`` and Corral's own pool directory, compared after
  resolving symbolic links and ``..`` (neither can lead out of a root).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from corral.errors import PermissionDenied
from corral.model.auth import Role
from corral.services.principal import Principal


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class HostPathRule:
    """``roots``: the setting ``host_path_roots``; ``own``: Corral's own directories (its pool)."""

    def __init__(self, roots: Iterable[str], own: Iterable[str] = ()) -> None:
        # Relative entries would depend on the server's working directory: ignored.
        configured = [r for r in (*own, *roots) if r.startswith("/")]
        self.roots = tuple(dict.fromkeys(posixpath.normpath(r) for r in configured))
        self._resolved_roots = tuple(dict.fromkeys(os.path.realpath(r) for r in configured))

    def refuse_non_admin(self, principal: Principal, field: str, instead: str) -> None:
        """PermissionDenied unless ``principal`` is an admin; ``instead`` says what to name."""
        if not principal.allows(Role.ADMIN):
            raise PermissionDenied(
                f"{field}: only admins may name files on the host by path; {instead}"
            )

    def check(
        self, principal: Principal, field: str, path: str, *, instead: str, local: bool = True
    ) -> str:
        """The path to hand on (symbolic links resolved when it is on this machine), or
        PermissionDenied. ``local`` says the file is on the machine Corral runs on; a remote
        host's links cannot be followed from here, so there ``..`` is refused outright."""
        self.refuse_non_admin(principal, field, instead)
        if local:
            resolved = os.path.realpath(path)
            roots = self._resolved_roots
        else:
            if ".." in path.split("/"):
                raise PermissionDenied(f"{field}: a path on a remote host may not contain '..'")
            resolved = posixpath.normpath(path)
            roots = self.roots
        if not any(_under(resolved, root) for root in roots):
            allowed = ", ".join(self.roots) or "none"
            raise PermissionDenied(
                f"{field} {path!r} is outside the directories whose files Corral hands out "
                f"(host_path_roots and Corral's pool: {allowed}); move the file into one of "
                "them or add its directory to host_path_roots"
            )
        return resolved
