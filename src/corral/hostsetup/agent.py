"""The host agent as shipped (one zip, named by its version) and the commands that install and
run it on a host over SSH. The agent itself is :mod:`corral.hostagent`.

On the host the agent lives at ``/var/lib/corral-agent/agent-VERSION.pyz``. Every run checks the
file's SHA-256 first (one ``sha256sum``), so a missing, damaged or replaced agent is reinstalled
before any operation runs, never after; installing removes the other versions.
"""

from __future__ import annotations

import hashlib
import io
import shlex
import zipfile
from dataclasses import dataclass
from functools import cache

from corral.errors import HostError
from corral.hostagent import protocol
from corral.hostsetup.ssh import SshRunner

AGENT_DIR = "/var/lib/corral-agent"
#: The run command's exit status when the agent file is missing or not the expected bytes.
NOT_INSTALLED = 97
NO_PYTHON = 127
_MAIN = b"from hostagent.main import main\n\nraise SystemExit(main())\n"


@dataclass(frozen=True)
class AgentBundle:
    version: str
    data: bytes  # the zip

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def path(self) -> str:
        return f"{AGENT_DIR}/agent-{self.version}.pyz"


def bundle_from(files: dict[str, bytes]) -> AgentBundle:
    """The zip of ``files`` (the agent package's sources): ``hostagent/…`` plus its recorded
    version and a ``__main__.py``; fixed timestamps, so the same sources give the same bytes."""
    version = protocol.source_digest(files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = {f"hostagent/{name}": data for name, data in files.items()}
        entries[f"hostagent/{protocol.VERSION_FILE}"] = version.encode()
        entries["__main__.py"] = _MAIN
        for name in sorted(entries):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), entries[name])
    return AgentBundle(version, buffer.getvalue())


@cache
def agent_bundle() -> AgentBundle:
    """This Corral's agent."""
    return bundle_from(protocol.package_sources())


def run_command(bundle: AgentBundle) -> str:
    """The shell command that runs the agent with the request on stdin (nothing secret in it),
    or exits with NOT_INSTALLED when the file is not exactly ``bundle``."""
    f = shlex.quote(bundle.path)
    return (
        f'echo "{bundle.sha256}  "{f} | sha256sum -c --status 2>/dev/null '
        f"|| exit {NOT_INSTALLED}; exec python3 -I {f}"
    )


def install_script(bundle: AgentBundle) -> str:
    """Stdin → a temporary file → checked → renamed into place; other versions removed."""
    d = shlex.quote(AGENT_DIR)
    return f"""
set -e
umask 022
mkdir -p {d}
t=$(mktemp {d}/.upload-XXXXXXXX)
trap 'rm -f "$t"' EXIT
head -c {len(bundle.data)} >"$t"
echo "{bundle.sha256}  $t" | sha256sum -c --status || exit 3
chmod 0644 "$t"
mv -f "$t" {shlex.quote(bundle.path)}
trap - EXIT
for old in {d}/agent-*.pyz; do
    [ "$old" = {shlex.quote(bundle.path)} ] || rm -f "$old"
done
command -v python3 >/dev/null || exit {NO_PYTHON}
"""


async def install(ssh: SshRunner, bundle: AgentBundle, seconds: float = 60) -> None:
    """Put ``bundle`` on the host (HostError naming what went wrong)."""
    script = install_script(bundle)
    result = await ssh.run(
        f"sh -c {shlex.quote(script)}", input=bundle.data, seconds=seconds, check=False
    )
    if result.exit_status == 3:
        raise HostError("the host agent arrived damaged on the host: try again")
    if result.exit_status == NO_PYTHON:
        raise HostError(
            "the host has no python3 to run Corral's host agent (apt-get install python3)"
        )
    if result.exit_status != 0:
        raise HostError(f"installing the host agent failed: {result.failure()}")
