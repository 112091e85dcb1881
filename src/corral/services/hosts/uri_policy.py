"""Which libvirt URIs a host may be added with: the parts of the rule that depend on this
Corral (its own directories, whether simulated hosts are allowed).

The URI's shape and its query parameters are checked where it enters (``model.host``); here a
path parameter must name Corral's own directory, and libvirt's test driver needs
``allow_test_hosts`` (a node description file, ``test:///PATH.xml``, must also be in Corral's
simulated-hosts directory: libvirt reads it on Corral's machine, so no other file may be
named). Every way a host is added by URI (API, CLI, UI) ends in
``HostService.add``, which asks this policy first; enrollment builds its URIs itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from corral.errors import InvalidRequest
from corral.model.host import LIBVIRT_URI_PATTERN, LIBVIRT_URI_RULE, uri_params


@dataclass(frozen=True)
class HostUriPolicy:
    #: ``qemu+tls``'s ``pkipath``: Corral's libvirt client certificate directory.
    pkipath: Path
    #: ``qemu+ssh``'s ``keyfile``: a key file directly in Corral's ssh directory.
    ssh_dir: Path
    #: Whether libvirt's test driver (``test:///default``) may be added (simulations).
    allow_test_hosts: bool = False
    #: Where simulated hosts' node descriptions (``test:///PATH.xml``) must be.
    simulated_dir: Path | None = None

    def check(self, uri: str) -> None:
        """InvalidRequest (422) unless ``uri`` may be added as a host."""
        if not re.fullmatch(LIBVIRT_URI_PATTERN, uri):
            raise InvalidRequest(f"uri: {LIBVIRT_URI_RULE}")
        try:
            params = uri_params(uri)
        except ValueError as err:
            raise InvalidRequest(f"uri: {err}") from None
        if uri.startswith("test:") and not self.allow_test_hosts:
            raise InvalidRequest(
                "uri: libvirt's test driver simulates a host; it can be added only where the "
                "setting allow_test_hosts is true (simulations and tests)"
            )
        if uri.startswith("test://") and uri != "test:///default":
            self._check_node_file(uri.removeprefix("test://"))
        pkipath = params.get("pkipath")
        if pkipath is not None and os.path.normpath(pkipath) != os.path.normpath(self.pkipath):
            raise InvalidRequest(
                f"uri: pkipath must be Corral's own libvirt PKI directory {self.pkipath} "
                "(enroll the host to get its certificates there) or be left out"
            )
        keyfile = params.get("keyfile")
        if keyfile is not None and Path(os.path.normpath(keyfile)).parent != self.ssh_dir:
            raise InvalidRequest(
                f"uri: keyfile must be a key file in Corral's ssh directory {self.ssh_dir} "
                "or be left out"
            )

    def _check_node_file(self, path: str) -> None:
        """A simulated host's node description: a file directly in the simulated-hosts
        directory, symbolic links resolved (one pointing elsewhere is refused)."""
        where = self.simulated_dir
        real = Path(os.path.realpath(path))
        if where is None or real.parent != Path(os.path.realpath(where)) or ".." in path:
            raise InvalidRequest(
                f"uri: a simulated host's node description must be a file in Corral's "
                f"simulated-hosts directory {where} (`corral testbed simulate` writes them "
                f"there); {LIBVIRT_URI_RULE}"
            )
        if not real.is_file():
            raise InvalidRequest(f"uri: there is no node description {path}")
