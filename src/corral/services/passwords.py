"""Password and token primitives: argon2id for passwords, SHA-256 for random token secrets."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from corral.store.token_secrets import TOKEN_PREFIX, hash_token, new_token_secret

__all__ = [
    "TOKEN_PREFIX",
    "generate_password",
    "hash_password",
    "hash_token",
    "needs_rehash",
    "new_token_secret",
    "verify_password",
]

# argon2-cffi's defaults follow RFC 9106's recommended profile (argon2id, 64 MiB, t=3); kept
# as the library's so that upgrades raise the cost and ``needs_rehash`` notices.
_hasher = PasswordHasher()

# Verified against when the user does not exist, so that "no such user" costs as much time as
# "wrong password" and the login endpoint does not reveal which user names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string with its own salt and parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches. Pass ``None`` for an unknown user: it still takes the time
    of a real check and returns False. argon2 compares digests in constant time."""
    try:
        _hasher.verify(password_hash if password_hash is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's: after a successful
    login, store ``hash_password(password)`` again."""
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password for the first admin: 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)
