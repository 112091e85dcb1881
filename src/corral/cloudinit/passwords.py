"""Guest passwords as SHA-512 crypt hashes (``$6$SALT$HASH``), what cloud-init's
``hashed_passwd`` hands to the guest's ``chpasswd -e``.

Hashed by ``openssl passwd -6``: OpenSSL is maintained (Debian ships its security fixes) and
on every Debian machine, and its hashes are glibc's/libxcrypt's (5000 rounds, a 16-character
salt from OpenSSL's random generator). Python's ``crypt`` module is deprecated (gone in 3.13)
and passlib is unmaintained; its fork libpass is still alpha. The password travels on
``openssl``'s standard input, never its command line (which ``ps`` shows every user).
OpenSSL reads at most 256 bytes of it, hence ``model.PASSWORD_MAX_BYTES``.
"""

from __future__ import annotations

import re
import subprocess

from pydantic import SecretStr

from corral.errors import CorralError, OperationTimeout

#: What ``openssl passwd -6`` prints: the scheme, a salt of up to 16 characters, 86 of hash.
SHA512_CRYPT = re.compile(r"^\$6\$[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$")
TIMEOUT_S = 10.0


def sha512_crypt(password: SecretStr, *, timeout_s: float = TIMEOUT_S) -> str:
    """``password``'s SHA-512 crypt hash with a fresh random salt."""
    try:
        done = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"],
            input=password.get_secret_value().encode(),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        raise CorralError(
            "openssl is not installed on Corral's machine: run `bash scripts/setup.sh` "
            "(apt package openssl); it hashes cloud-init passwords"
        ) from None
    except subprocess.TimeoutExpired:
        raise OperationTimeout(
            f"openssl passwd did not hash a password within {timeout_s} s"
        ) from None
    hashed = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0 or SHA512_CRYPT.match(hashed) is None:
        # Its words, never its input: stderr cannot hold the password (read from stdin).
        reason = done.stderr.decode(errors="replace").strip()[:300]
        raise CorralError(f"openssl passwd -6 failed (exit status {done.returncode}): {reason}")
    return hashed
