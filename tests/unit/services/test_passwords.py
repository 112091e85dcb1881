"""Password hashing and token secrets."""

from __future__ import annotations

import re

from argon2 import PasswordHasher

from corral.model.auth import UserCreate
from corral.services.passwords import (
    generate_password,
    hash_password,
    hash_token,
    needs_rehash,
    new_token_secret,
    verify_password,
)


def test_hash_and_verify() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse battery ")
    assert not verify_password(hashed, "")
    assert hash_password("correct horse battery") != hashed  # salted


def test_unknown_user_and_garbage_hash_never_verify() -> None:
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")


def test_needs_rehash_spots_weaker_parameters() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    assert needs_rehash(weak)
    assert verify_password(weak, "pw")
    assert not needs_rehash(hash_password("pw"))


def test_token_secrets() -> None:
    secrets = {new_token_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(r"crl_[A-Za-z0-9_-]{43}", secret)


def test_hash_token_is_sha256_hex() -> None:
    # FIPS 180-2's test vector for "abc".
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_token("abc") == expected
    assert hash_token("crl_test") != hash_token("crl_tesu")


def test_generated_password_is_accepted_for_a_user() -> None:
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    for pw in passwords:
        assert len(pw) == 24
        UserCreate(name="admin", password=pw)
