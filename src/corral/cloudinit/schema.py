"""User-data checked by cloud-init itself before a VM boots on it, and its digest.

The check is Debian's ``cloud-init`` package (22.4 in Debian 12), the code a Debian guest runs:
``scripts/setup.sh`` unpacks it with ``dpkg-deb -x`` into ``build/cloud-init`` of the checkout
(installed, cloud-init would run at every boot of Corral's own machine) and installs its Python
dependencies from Debian. Debian's ``/usr/bin/python3`` runs it in a subprocess
(``_schema_driver.py``) with a timeout and a memory limit; its verdict comes back in
cloud-init's words, less the values they would quote (see the driver).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

from corral.errors import CorralError, InvalidRequest, OperationTimeout

SYSTEM_PYTHON = Path("/usr/bin/python3")
DRIVER = Path(__file__).with_name("_schema_driver.py")
#: The driver's file name for the user-data: cloud-init's messages say "File user-data …".
FILE_NAME = "user-data"
#: Half a second when idle; the machine may be busy.
TIMEOUT_S = 30.0
_INCOMPLETE = 3
SETUP_HINT = "run `bash scripts/setup.sh`: it unpacks Debian's cloud-init package there"


def default_root() -> Path:
    """``build/cloud-init`` of the source checkout this package runs from (``make run``)."""
    return Path(__file__).resolve().parents[3] / "build" / "cloud-init"


def user_data_digest(text: str) -> str:
    """The SHA-256 of the user-data's UTF-8 bytes, in hex: what is shown instead of it."""
    return hashlib.sha256(text.encode()).hexdigest()


def check_user_data(text: str, *, root: Path | None = None, timeout_s: float = TIMEOUT_S) -> None:
    """Raise ``InvalidRequest`` with cloud-init's message unless ``text`` is valid
    cloud-config (``#cloud-config`` first, a YAML mapping, every module's keys as cloud-init's
    schema wants them; keys cloud-init does not know pass, as they do in cloud-init 22.4).
    ``root``: where Debian's cloud-init package is unpacked (default: ``default_root()``).
    Raises ``CorralError`` when that check is missing, ``OperationTimeout`` when slow."""
    where = root if root is not None else default_root()
    _require(where)
    with tempfile.TemporaryDirectory(prefix="corral-user-data-") as work:
        Path(work, FILE_NAME).write_bytes(text.encode())
        argv = [str(SYSTEM_PYTHON), "-I", "-W", "ignore", str(DRIVER), str(where), FILE_NAME]
        try:
            done = subprocess.run(
                argv,
                cwd=work,
                capture_output=True,
                timeout=timeout_s,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise OperationTimeout(
                f"cloud-init's schema check of the user-data took more than {timeout_s:g} s: "
                "try again, or shorten the user-data"
            ) from None
    if done.returncode == _INCOMPLETE:
        reason = done.stderr.decode(errors="replace").strip()[:300]
        raise CorralError(f"cloud-init's schema check is incomplete ({reason}): {SETUP_HINT}")
    verdict = _verdict(done)
    if not verdict.get("valid"):
        raise InvalidRequest(f"user_data is not valid cloud-config: {verdict.get('message')}")


def _require(root: Path) -> None:
    package = root / "usr" / "lib" / "python3" / "dist-packages" / "cloudinit"
    if not (package / "config" / "schema.py").is_file():
        raise CorralError(
            f"cloud-init's schema check is missing: {root} holds no unpacked cloud-init; "
            + SETUP_HINT
        )
    if not SYSTEM_PYTHON.is_file():
        raise CorralError(f"{SYSTEM_PYTHON} is missing (Debian's python3 runs the check)")


def _verdict(done: subprocess.CompletedProcess[bytes]) -> dict[str, object]:
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        verdict = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except json.JSONDecodeError:
        verdict = None
    if not isinstance(verdict, dict):
        # Not its stderr: a traceback there may quote the user-data.
        raise CorralError(
            f"cloud-init's schema check failed (exit status {done.returncode}) without a "
            f"verdict: run {DRIVER} by hand with Debian's python3 to see why"
        )
    return verdict
