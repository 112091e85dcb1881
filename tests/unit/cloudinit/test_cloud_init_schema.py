"""User-data checked by cloud-init's own schema (Debian's package, unpacked by the setup)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from corral.cloudinit.compose import compose
from corral.cloudinit.model import CloudInitConfig
from corral.cloudinit.schema import check_user_data, default_root, user_data_digest
from corral.errors import CorralError, InvalidRequest
from tests.unit.cloudinit._keys import ed25519_key


def _refusal(text: str) -> str:
    with pytest.raises(InvalidRequest) as caught:
        check_user_data(text)
    message = caught.value.message
    assert message.startswith("user_data is not valid cloud-config: ")
    return message


def test_valid_cloud_config_passes() -> None:
    check_user_data("#cloud-config\nruncmd:\n  - [sh, -c, 'echo hi']\npackages: [htop]\n")


def test_valid_yaml_that_is_not_valid_cloud_config_gets_cloud_inits_words() -> None:
    message = _refusal("#cloud-config\nruncmd: 5\n")
    assert message.endswith("Cloud config schema errors: runcmd: 5 is not of type 'array'")


def test_an_unknown_key_inside_a_module_is_refused_but_one_at_the_top_passes() -> None:
    """cloud-init 22.4's schema forbids unknown keys inside its modules, not at the top."""
    message = _refusal("#cloud-config\nntp: {servers: [ntp.example], bogus: 1}\n")
    assert message.endswith("ntp: Additional properties are not allowed ('bogus' was unexpected)")
    check_user_data("#cloud-config\nbogus: 1\n")


def test_invalid_yaml_is_placed_but_not_quoted() -> None:
    message = _refusal("#cloud-config\npassword: [hunter2\n")
    assert "format-l2.c11: File user-data is not valid yaml." in message
    assert "expected ',' or ']'" in message and "hunter2" not in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("runcmd: [ls]\n", 'File user-data needs to begin with "#cloud-config"'),
        ("#cloud-config\n- ls\n", "Cloud-config is not a YAML dict."),
        (
            "#cloud-config\nusers: [default, {name: bob, sudo: 5, plain_text_passwd: hunter2}]\n",
            "users.1: a mapping is not valid under any of the given schemas",
        ),
        ("#cloud-config\nruncmd: 'hunter2'\n", "runcmd: a string is not of type 'array'"),
    ],
)
def test_cloud_inits_refusals_keep_the_values_to_themselves(text: str, words: str) -> None:
    message = _refusal(text)
    assert words in message and "hunter2" not in message


def test_the_composed_user_data_passes_cloud_inits_check() -> None:
    config = CloudInitConfig.model_validate(
        {
            "hostname": "web1",
            "ssh_authorized_keys": [ed25519_key()],
            "users": [
                {
                    "name": "alice",
                    "ssh_authorized_keys": [ed25519_key()],
                    "password": "pw",
                    "sudo": True,
                },
                {"name": "bob"},
            ],
            "user_data": "#cloud-config\nusers: [default, {name: carol, groups: [adm]}]\n"
            "runcmd: [[sh, -c, 'echo marker > /dev/ttyS0']]\n",
        }
    )
    check_user_data(compose(config, ["52:54:00:00:00:01"], "i-1").user_data)


def test_a_missing_check_names_the_setup(tmp_path: Path) -> None:
    with pytest.raises(CorralError) as caught:
        check_user_data("#cloud-config\n", root=tmp_path / "nothing")
    assert "run `bash scripts/setup.sh`" in caught.value.message
    assert not isinstance(caught.value, InvalidRequest)


def test_the_setup_unpacked_cloud_init_into_the_checkout() -> None:
    assert (default_root() / ".corral-version").read_text().startswith("22.4")


def test_the_digest_is_the_sha256_of_the_utf8_text() -> None:
    text = "#cloud-config\nhostname: é\n"
    assert user_data_digest(text) == hashlib.sha256(text.encode()).hexdigest()
