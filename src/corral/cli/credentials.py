"""The CLI's stored login: ``credentials.toml`` in the config directory, readable only by its owner.

The directory is ``$CORRAL_CONFIG_DIR`` if set, else ``$XDG_CONFIG_HOME/corral``, else
``~/.config/corral``. The file holds the API URL, the token secret and the token's id (so
``corral logout`` can revoke it).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "credentials.toml"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    token_id: str | None = None
    username: str | None = None
    #: The CA to verify the server with (Corral's own web CA), when it serves HTTPS with one.
    ca_cert: str | None = None

    def __repr__(self) -> str:
        # The secret must never end up in a traceback or a log line.
        return f"Credentials(url={self.url!r}, token=***, username={self.username!r})"


def config_dir() -> Path:
    explicit = os.environ.get("CORRAL_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "corral"


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def load() -> Credentials | None:
    """The stored credentials, or ``None`` when there are none (or the file is unusable)."""
    path = credentials_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    url, token = data.get("url"), data.get("token")
    if not isinstance(url, str) or not isinstance(token, str):
        return None
    token_id = data.get("token_id")
    username = data.get("username")
    ca_cert = data.get("ca_cert")
    return Credentials(
        url=url,
        token=token,
        token_id=token_id if isinstance(token_id, str) else None,
        username=username if isinstance(username, str) else None,
        ca_cert=ca_cert if isinstance(ca_cert, str) else None,
    )


def save(creds: Credentials) -> Path:
    """Write the credentials atomically with mode 0600 in a 0700 directory."""
    import tomli_w  # only ``login`` writes: the other commands start without it

    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    data = {"url": creds.url, "token": creds.token}
    if creds.token_id is not None:
        data["token_id"] = creds.token_id
    if creds.username is not None:
        data["username"] = creds.username
    if creds.ca_cert is not None:
        data["ca_cert"] = creds.ca_cert
    path = directory / FILE_NAME
    tmp = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    # O_EXCL + 0600 from the first byte: the secret is never readable by others, even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            tomli_w.dump(data, handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove() -> bool:
    """Delete the credentials file; ``True`` if there was one."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
