"""VNC authentication: DES of the server's challenge with the password as key.

VNC's quirk: each key byte is used bit-reversed (the original code put the bits in the order of
the DES standard's bit numbering). Single DES is TripleDES with three equal keys.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def vnc_auth_response(password: str, challenge: bytes) -> bytes:
    """The 16-byte response to a VNC authentication challenge (password truncated to 8)."""
    key = password.encode("latin-1", "replace")[:8].ljust(8, b"\0").translate(_REVERSED)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()
