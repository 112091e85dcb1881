"""Driver secrets encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key in the data
directory (``DATA_DIR/power/secrets.key``, mode 0600, made on first use).

The database holds only tokens; someone with a copy of the database but not of the key file
learns nothing. Plaintext secrets live in memory for one driver call and are never logged,
stored elsewhere or returned by the API.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from corral.errors import Conflict


class SecretBox:
    def __init__(self, data_dir: Path) -> None:
        self.key_path = data_dir / "power" / "secrets.key"
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            path = self.key_path
            if not path.exists():
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                # O_EXCL: two processes starting at once do not overwrite each other's key.
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(Fernet.generate_key())
            self._fernet = Fernet(path.read_bytes().strip())
        return self._fernet

    def seal(self, secrets: dict[str, str]) -> str:
        return self._key().encrypt(json.dumps(secrets).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        try:
            data = json.loads(self._key().decrypt(token.encode()))
        except InvalidToken:
            raise Conflict(
                f"the stored power driver secret cannot be decrypted with {self.key_path} "
                "(was the key file replaced?): set the host's driver again"
            ) from None
        return {str(k): str(v) for k, v in data.items()}
