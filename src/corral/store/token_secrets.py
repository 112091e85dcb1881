"""API token secrets: generation and hashing (leaf module, shared by store and services)."""

from __future__ import annotations

import hashlib
import secrets

#: Every Corral token starts with this, so secret scanners and people can recognise one.
TOKEN_PREFIX = "crl_"
#: How many leading characters of a secret are kept in clear, to tell tokens apart in listings.
DISPLAY_PREFIX_LEN = 8


def new_token_secret() -> str:
    """A fresh token secret: ``crl_`` + 32 random bytes, URL-safe base64 (256 bits of entropy)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    """SHA-256 hex of a token secret.

    A fast hash is right here, unlike for passwords: the secret is 256 random bits, so there is
    no dictionary to try and brute force over the hash is hopeless whatever its speed. A slow,
    salted hash (argon2) would only make every API request slower, and an unsalted digest lets
    the database find a token by an indexed equality lookup on the hash.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    """The part of a secret that may be shown again: the first 8 characters."""
    return secret[:DISPLAY_PREFIX_LEN]
