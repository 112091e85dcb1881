"""The secrets every instance of one cluster must hold the same copy of, under ``DATA_DIR``.

==========================  =========================================================
``pki/*-ca/``               the cluster's CAs (hosts trust them; a certificate another
                            instance issued must verify here too)
``pki/manager/``            Corral's own client certificates (libvirt, console proxy)
``power/secrets.key``       the key BMC passwords are sealed with in the database
``ssh/``                    the known hosts Corral checks hosts' SSH keys against
==========================  =========================================================

``fingerprints`` names each CA by the SHA-256 of its public key and the power key by the
SHA-256 of its bytes (256 random bits: the digest reveals nothing); the database keeps the
first instance's, and a later instance whose differ is refused at start
(``services/shared_secrets.py``). ``export_bundle``/``import_bundle``: every file above in
one passphrase-protected file (scrypt, then Fernet), for ``corral admin export-secrets`` and
``import-secrets``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from corral.errors import InvalidRequest
from corral.pki._files import CERT_MODE, KEY_MODE, private_dir, write_atomic

CA_DIRS = ("libvirt-ca", "migration-ca", "vnc-server-ca", "console-client-ca", "web-ca")
POWER_KEY = Path("power") / "secrets.key"
#: What a bundle holds (relative to the data directory): these trees, whole.
SHARED_TREES = (
    *(Path("pki") / ca for ca in CA_DIRS),
    Path("pki") / "manager" / "libvirt",
    Path("pki") / "manager" / "console",
    POWER_KEY,
    Path("ssh"),
)
FORMAT = "corral-secrets-1"
_SCRYPT_N = 2**15


def ensure_power_key(data_dir: Path) -> None:
    """Make the power secrets key now if missing (it is part of what instances share)."""
    path = data_dir / POWER_KEY
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())


def fingerprints(data_dir: Path) -> dict[str, str]:
    """Each shared secret present, by name: SHA-256 hex of a CA's public key, of the key."""
    found: dict[str, str] = {}
    for ca in CA_DIRS:
        cert_path = data_dir / "pki" / ca / "ca-cert.pem"
        if cert_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            found[f"pki/{ca}"] = hashlib.sha256(spki).hexdigest()
    key = data_dir / POWER_KEY
    if key.exists():
        found[str(POWER_KEY)] = hashlib.sha256(key.read_bytes().strip()).hexdigest()
    return found


def _fernet(passphrase: str, salt: bytes) -> Fernet:
    if len(passphrase) < 12:
        raise InvalidRequest("the passphrase needs at least 12 characters")
    key = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1).derive(passphrase.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _files(data_dir: Path) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = {}
    for tree in SHARED_TREES:
        root = data_dir / tree
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            if path.name.startswith("."):
                continue  # locks and half-written temporaries
            mode = path.stat().st_mode & 0o777
            content = base64.b64encode(path.read_bytes()).decode()
            files[str(path.relative_to(data_dir))] = {"mode": mode, "data": content}
    return files


def export_bundle(data_dir: Path, passphrase: str) -> bytes:
    """The shared secrets of ``data_dir``, sealed with ``passphrase``."""
    files = _files(data_dir)
    if not any(name.startswith("pki/") for name in files):
        raise InvalidRequest(f"{data_dir} holds no cluster CA: run `corral admin init` first")
    salt = os.urandom(16)
    sealed = _fernet(passphrase, salt).encrypt(json.dumps(files).encode())
    return json.dumps(
        {"format": FORMAT, "salt": base64.b64encode(salt).decode(), "sealed": sealed.decode()}
    ).encode()


def import_bundle(data_dir: Path, bundle: bytes, passphrase: str) -> list[str]:
    """Write a bundle's files into ``data_dir`` (replacing those there); their names."""
    try:
        outer = json.loads(bundle)
        if outer.get("format") != FORMAT:
            raise ValueError(outer.get("format"))
        salt = base64.b64decode(outer["salt"])
        sealed = outer["sealed"].encode()
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidRequest("not a secrets file of `corral admin export-secrets`") from None
    try:
        files = json.loads(_fernet(passphrase, salt).decrypt(sealed))
    except InvalidToken:
        raise InvalidRequest("wrong passphrase (or the file was changed)") from None
    private_dir(data_dir)
    for name, entry in files.items():
        relative = Path(name)
        if ".." in relative.parts or not any(relative.is_relative_to(t) for t in SHARED_TREES):
            raise InvalidRequest(f"the secrets file names {name!r}, outside what is shared")
        path = data_dir / relative
        for parent in reversed(path.relative_to(data_dir).parents[:-1]):
            private_dir(data_dir / parent)
        mode = KEY_MODE if int(entry["mode"]) & 0o077 == 0 else CERT_MODE
        write_atomic(path, base64.b64decode(entry["data"]), mode)
    return sorted(files)
