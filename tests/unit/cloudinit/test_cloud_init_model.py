"""The cloud-init request model: each refusal a sentence a person can act on (a 422)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from corral.cloudinit.model import CloudInitConfig, CloudUser, StaticNic
from corral.http.validation import validation_items
from tests.unit.cloudinit._keys import dsa_key, ecdsa_key, ed25519_key, rsa_key


def _refusal(body: dict[str, Any]) -> str:
    """The one message the API would answer with, as ``loc: msg``."""
    with pytest.raises(ValidationError) as caught:
        CloudInitConfig.model_validate(body)
    items = validation_items(caught.value.errors())
    assert len(items) == 1, items
    return f"{items[0]['loc']}: {items[0]['msg']}"


def test_a_full_config_is_taken_and_keys_keep_their_comment() -> None:
    key = ed25519_key("alice@laptop")
    spaced = key.replace(" ", "   ", 1) + "  "
    config = CloudInitConfig.model_validate(
        {
            "hostname": "web-1",
            "ssh_authorized_keys": [rsa_key(), ecdsa_key()],
            "users": [
                {"name": "alice", "ssh_authorized_keys": [spaced], "password": "pw", "sudo": True}
            ],
            "network": [
                {
                    "nic": 0,
                    "mode": "static",
                    "address": "192.0.2.10/24",
                    "gateway": "192.0.2.1",
                    "dns": ["192.0.2.53", "2001:db8::53"],
                },
                {"nic": 1.0, "mode": "dhcp", "dhcp6": True},
            ],
            "user_data": "#cloud-config\nruncmd: [ls]\n",
        }
    )
    assert config.users[0].ssh_authorized_keys == [key]
    assert key.endswith(" alice@laptop")
    assert [n.nic for n in config.network] == [0, 1]
    assert isinstance(config.network[0], StaticNic)


def test_a_password_is_never_shown() -> None:
    user = CloudUser.model_validate({"name": "alice", "password": "hunter2-secret"})
    assert "hunter2" not in repr(user) and "hunter2" not in str(user)
    assert "hunter2" not in user.model_dump_json()
    assert user.password is not None and user.password.get_secret_value() == "hunter2-secret"
    hashed = CloudUser(name="bob", password_hash="$6$saltsalt$" + "a" * 86)
    assert "$6$" not in repr(hashed)


def test_a_refusal_never_shows_the_input() -> None:
    body = {
        "users": [{"name": "root", "password": "hunter2"}],
        "user_data": "#cloud-config\nchpasswd: {list: 'a:hunter2'}\n",
        "hostname": "-",
    }
    with pytest.raises(ValidationError) as caught:
        CloudInitConfig.model_validate(body)
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(caught.value)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB", "does not parse (its base64 part is cut"),
        ("AAAAC3NzaC1lZDI1NTE5", "is not an OpenSSH public key: give one line 'TYPE BASE64"),
        ("ssh-foo AAAAC3NzaC1lZDI1NTE5AAAA x", "'ssh-foo' is not a key type"),
        ("line\nbreak", "one line, without line breaks"),
    ],
)
def test_a_bad_ssh_key_is_refused_in_words(key: str, words: str) -> None:
    message = _refusal({"ssh_authorized_keys": [key]})
    assert message.startswith("ssh_authorized_keys.0: ") and words in message


def test_authorized_keys_options_are_refused() -> None:
    message = _refusal(
        {"users": [{"name": "a", "ssh_authorized_keys": [f'from="10.0.0.1" {ed25519_key()}']}]}
    )
    assert "without authorized_keys options (from=..., command=...)" in message
    assert message.startswith("users.0.ssh_authorized_keys.0: ")


def test_keys_the_guest_would_ignore_are_refused() -> None:
    assert "refuses DSA keys" in _refusal({"ssh_authorized_keys": [dsa_key()]})
    assert "RSA key of 768 bits is ignored" in _refusal({"ssh_authorized_keys": [rsa_key(768)]})


@pytest.mark.parametrize("name", ["-web", "web-", "web.example.com", "a" * 64, "we b", ""])
def test_a_hostname_is_one_rfc1123_label(name: str) -> None:
    message = _refusal({"hostname": name})
    assert message.startswith("hostname: ")
    assert "one DNS label" in message or "at most 63 characters" in message


@pytest.mark.parametrize(
    ("address", "gateway", "words"),
    [
        ("192.0.2.10/24", "198.51.100.1", "gateway 198.51.100.1 is outside 192.0.2.0/24"),
        ("192.0.2.10/30", "192.0.2.14", "gateway 192.0.2.14 is outside 192.0.2.8/30"),
        ("192.0.2.10/24", "2001:db8::1", "gateway 2001:db8::1 is outside 192.0.2.0/24"),
        ("2001:db8:1::5/64", "2001:db8:2::1", "outside 2001:db8:1::/64"),
        ("192.0.2.10/24", "192.0.2.10", "is the NIC's own address"),
        ("192.0.2.0/24", None, "192.0.2.0 is the network address of 192.0.2.0/24"),
        ("192.0.2.255/24", None, "the broadcast address"),
    ],
)
def test_a_static_address_with_a_gateway_outside_its_network_is_refused(
    address: str, gateway: str | None, words: str
) -> None:
    nic = {"nic": 2, "mode": "static", "address": address, "gateway": gateway}
    message = _refusal({"network": [nic]})
    assert message.startswith("network.2.static: NIC 2: ") or message.startswith(
        "network.0.static: NIC 2: "
    ), message
    assert words in message


def test_point_to_point_and_ipv6_addresses_need_no_room_for_edges() -> None:
    for address, gateway in (("192.0.2.0/31", "192.0.2.1"), ("2001:db8::/64", "2001:db8::1")):
        StaticNic.model_validate(
            {"nic": 0, "mode": "static", "address": address, "gateway": gateway}
        )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"network": [{"nic": 0, "mode": "dhcp"}, {"nic": 0, "mode": "dhcp"}]},
            "NIC 0 appears more than once",
        ),
        ({"users": [{"name": "a"}, {"name": "a"}]}, "user a appears more than once"),
        ({"users": [{"name": "root"}]}, "user 'root' is the image's own"),
        ({"users": [{"name": "default"}]}, "top-level ssh_authorized_keys"),
        ({"users": [{"name": "Alice"}]}, "a user name is 1-32 characters from a-z"),
        (
            {"users": [{"name": "a", "password": "x", "password_hash": "$6$saltsalt$" + "a" * 86}]},
            "not both",
        ),
        ({"users": [{"name": "a", "password": ""}]}, "the password is empty"),
        ({"users": [{"name": "a", "password": "a\nb"}]}, "control characters"),
        ({"users": [{"name": "a", "password": "é" * 129}]}, "longer than 256 bytes"),
        ({"users": [{"name": "a", "password_hash": "hunter2"}]}, "openssl passwd -6"),
        ({"network": [{"nic": True, "mode": "dhcp"}]}, "whole number, not true or false"),
        ({"network": [{"nic": 32, "mode": "dhcp"}]}, "less than or equal to 31"),
        ({"network": [{"nic": 0, "mode": "manual"}]}, "'dhcp', 'static'"),
        ({"user_data": "x" * 262_145}, "at most 262144 characters"),
        ({"flavour": "x"}, "unknown field"),
    ],
)
def test_other_refusals_say_what_to_change(body: dict[str, Any], words: str) -> None:
    message = _refusal(body)
    assert words in message, message
    assert "hunter2" not in message


def test_the_document_states_the_rules() -> None:
    schema = CloudInitConfig.model_json_schema()
    assert schema["properties"]["hostname"]["anyOf"][0]["pattern"].startswith("^[A-Za-z0-9]")
    nic = schema["$defs"]["DhcpNic"]["properties"]["nic"]
    assert (nic["minimum"], nic["maximum"]) == (0, 31)
    password = schema["$defs"]["CloudUser"]["properties"]["password"]["anyOf"][0]
    assert password["writeOnly"] is True
