"""SSH public keys made for the cloud-init tests, as the lines of OpenSSH ``.pub`` files."""

from __future__ import annotations

import secrets
import warnings

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning


def _line(key: PublicKeyTypes, comment: str) -> str:
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{raw.decode()} {comment}".rstrip()


def ed25519_key(comment: str = "alice@laptop") -> str:
    return _line(ed25519.Ed25519PrivateKey.generate().public_key(), comment)


def ecdsa_key(comment: str = "") -> str:
    return _line(ec.generate_private_key(ec.SECP256R1()).public_key(), comment)


def rsa_key(bits: int = 2048, comment: str = "bob@desk") -> str:
    if bits < 1024:
        # cryptography makes none this short any more: a public key needs only a modulus.
        modulus = (1 << (bits - 1)) | secrets.randbits(bits - 2) << 1 | 1
        return _line(rsa.RSAPublicNumbers(65537, modulus).public_key(), comment)
    return _line(rsa.generate_private_key(65537, bits).public_key(), comment)


def dsa_key() -> str:
    with warnings.catch_warnings():
        # cryptography will stop writing them: what the model refuses, by their type's name.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _line(dsa.generate_private_key(1024).public_key(), "old")
