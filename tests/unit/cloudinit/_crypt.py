"""The guest's own check of a password hash: libxcrypt's crypt(3), through ctypes."""

from __future__ import annotations

import ctypes
import ctypes.util


def crypt3(password: str, setting: str) -> str:
    """What libcrypt computes for ``password`` with the salt (and scheme) of ``setting``."""
    name = ctypes.util.find_library("crypt")
    assert name is not None, "libcrypt (Debian's libcrypt1) is missing"
    lib = ctypes.CDLL(name)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    result: bytes = lib.crypt(password.encode(), setting.encode())
    return result.decode()
