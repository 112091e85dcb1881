"""A backup store's encryption key: 32 random bytes an administrator keeps, in a file.

Corral derives two keys from it with HKDF-SHA256: one encrypts chunks (AES-256-GCM), the other
names them and authenticates manifests (HMAC-SHA256), so that chunk names say nothing about
their contents to someone without the key. The store records only a fingerprint of the key:
**a lost key means the backups it encrypted cannot be read by anyone**.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from corral.errors import InvalidRequest

KEY_BYTES = 32
_HEADER = "corral-backup-key-v1:"


@dataclass(frozen=True)
class StoreKey:
    encrypt: bytes
    mac: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> StoreKey:
        if len(secret) != KEY_BYTES:
            raise InvalidRequest(f"a backup key is {KEY_BYTES} bytes; this one has {len(secret)}")

        def derive(info: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(secret)

        return cls(encrypt=derive(b"corral backup chunks"), mac=derive(b"corral backup names"))

    @property
    def fingerprint(self) -> str:
        """What the store records to tell a wrong key from the right one (not the key)."""
        return hashlib.sha256(b"fingerprint" + self.mac).hexdigest()[:32]

    def name(self, data: bytes) -> str:
        return hmac.new(self.mac, data, hashlib.sha256).hexdigest()


def new_key_text() -> str:
    """A fresh key, as the one line a key file holds."""
    return _HEADER + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n"


def write_key_file(path: Path) -> None:
    """A new key in ``path`` (mode 0600; refused if the file exists: never overwrite a key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(new_key_text())


def parse_key(text: str) -> StoreKey:
    line = text.strip()
    if not line.startswith(_HEADER):
        raise InvalidRequest(
            "this is not a Corral backup key (a key file holds one line starting with "
            f"{_HEADER!r}; make one with `corral backup key new FILE`)"
        )
    try:
        secret = base64.b64decode(line[len(_HEADER) :], validate=True)
    except ValueError:
        raise InvalidRequest("the backup key's base64 part is damaged") from None
    return StoreKey.from_secret(secret)
