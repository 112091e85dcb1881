"""The seed's files: Corral's settings merged into the user's cloud-config, passwords hashed,
network config version 2 by MAC."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from corral.cloudinit.compose import SUDO_RULE, compose, seal
from corral.cloudinit.model import CloudInitConfig
from corral.cloudinit.passwords import sha512_crypt
from corral.cloudinit.schema import SYSTEM_PYTHON, default_root
from corral.errors import InvalidRequest
from tests.unit.cloudinit._crypt import crypt3
from tests.unit.cloudinit._keys import ed25519_key

MACS = ["52:54:00:AA:00:01", "52:54:00:aa:00:02"]


def _user_data(text: str) -> dict[str, Any]:
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_corral_settings_alone() -> None:
    alice, admin = ed25519_key("alice@laptop"), ed25519_key("admin@ops")
    config = CloudInitConfig.model_validate(
        {
            "hostname": "web1",
            "ssh_authorized_keys": [admin],
            "users": [
                {
                    "name": "alice",
                    "ssh_authorized_keys": [alice],
                    "password": "s3cret",
                    "sudo": True,
                }
            ],
        }
    )
    seed = compose(config, MACS, "vm-1234")
    assert yaml.safe_load(seed.meta_data) == {"instance-id": "vm-1234", "local-hostname": "web1"}
    assert seed.network_config is None
    data = _user_data(seed.user_data)
    assert data["hostname"] == "web1" and data["manage_etc_hosts"] is True
    assert data["ssh_authorized_keys"] == [admin]
    default, user = data["users"]
    assert default == "default"  # the image's default user is still made
    hashed = user.pop("hashed_passwd")
    assert user == {
        "name": "alice",
        "shell": "/bin/bash",
        "ssh_authorized_keys": [alice],
        "lock_passwd": False,
        "sudo": SUDO_RULE,
    }
    assert hashed.startswith("$6$") and crypt3("s3cret", hashed) == hashed
    assert "s3cret" not in seed.user_data + seed.meta_data


def test_the_users_cloud_config_is_kept_and_corral_wins_on_conflict() -> None:
    theirs_key, ours_key, top = ed25519_key("a@x"), ed25519_key("a@y"), ed25519_key("t@z")
    given = f"""#cloud-config
# comments go; keys stay
hostname: from-user-data
manage_etc_hosts: false
packages: [htop]
runcmd:
  - [sh, -c, "echo marker > /run/marker"]
ssh_authorized_keys: {top}
users:
  - name: carol
    groups: [adm]
  - name: alice
    groups: [docker]
    sudo: false
    shell: /bin/zsh
    ssh_authorized_keys: ["{theirs_key}"]
    plain_text_passwd: from-user-data
"""
    config = CloudInitConfig.model_validate(
        {
            "hostname": "web1",
            "ssh_authorized_keys": [top, ours_key],
            "users": [
                {
                    "name": "alice",
                    "ssh_authorized_keys": [ours_key],
                    "password": "pw",
                    "sudo": True,
                },
                {"name": "dave"},
            ],
            "user_data": given,
        }
    )
    data = _user_data(compose(config, MACS, "i-1").user_data)
    assert data["hostname"] == "web1"  # Corral's field wins
    assert data["manage_etc_hosts"] is False  # a key Corral only adds when it is not there
    assert data["packages"] == ["htop"]
    assert data["runcmd"] == [["sh", "-c", "echo marker > /run/marker"]]
    assert data["ssh_authorized_keys"] == [top, ours_key]
    carol, alice, dave = data["users"]  # no 'default': the user-data's list says who is made
    assert carol == {"name": "carol", "groups": ["adm"]}
    assert alice["groups"] == ["docker"] and alice["shell"] == "/bin/zsh"
    assert alice["sudo"] == SUDO_RULE and alice["lock_passwd"] is False
    assert alice["ssh_authorized_keys"] == [theirs_key, ours_key]
    assert "plain_text_passwd" not in alice and crypt3("pw", alice["hashed_passwd"]).startswith(
        "$6$"
    )
    assert dave == {"name": "dave", "shell": "/bin/bash"}


def test_user_data_alone_passes_through_and_nothing_is_added() -> None:
    config = CloudInitConfig(user_data="#cloud-config\nruncmd: [ls]\n")
    assert _user_data(compose(config, [], "i-1").user_data) == {"runcmd": ["ls"]}
    assert _user_data(compose(CloudInitConfig(), [], "i-1").user_data) == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("runcmd: [ls]\n", "first line is '#cloud-config'"),
        ("#cloud-config\n- a\n", "must be a YAML mapping"),
        ("#cloud-config\npassword: [hunter2\n", "not valid YAML (line 3, column 1)"),
        ("#cloud-config\nusers: 5\n", "user_data's users must be a list"),
    ],
)
def test_user_data_that_cannot_be_merged_is_refused(text: str, words: str) -> None:
    config = CloudInitConfig(user_data=text, users=[{"name": "alice"}])  # type: ignore[list-item]
    with pytest.raises(InvalidRequest) as caught:
        compose(config, [], "i-1")
    assert words in caught.value.message and "hunter2" not in caught.value.message


def test_seal_keeps_only_the_hash_and_compose_uses_it() -> None:
    config = CloudInitConfig.model_validate({"users": [{"name": "alice", "password": "pw1"}]})
    sealed = seal(config)
    (user,) = sealed.users
    assert user.password is None and user.password_hash is not None
    assert crypt3("pw1", user.password_hash) == user.password_hash
    assert "pw1" not in sealed.model_dump_json()
    again = _user_data(compose(sealed, [], "i-1").user_data)
    assert again["users"][1]["hashed_passwd"] == user.password_hash
    # A fresh salt each time: two hashes of one password differ.
    assert sha512_crypt(SecretStr("pw1")) != sha512_crypt(SecretStr("pw1"))


def test_a_password_hash_given_is_used_as_is() -> None:
    hashed = sha512_crypt(SecretStr("given"))
    config = CloudInitConfig.model_validate({"users": [{"name": "a", "password_hash": hashed}]})
    assert _user_data(compose(config, [], "i").user_data)["users"][1]["hashed_passwd"] == hashed


def _network(config: dict[str, Any]) -> dict[str, Any]:
    text = compose(CloudInitConfig.model_validate(config), MACS, "i-1").network_config
    assert text is not None
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_network_config_v2_matches_nics_by_mac() -> None:
    data = _network(
        {
            "network": [
                {"nic": 1, "mode": "dhcp", "dhcp6": True},
                {
                    "nic": 0,
                    "mode": "static",
                    "address": "192.0.2.10/24",
                    "gateway": "192.0.2.1",
                    "dns": ["192.0.2.53", "2001:db8::53"],
                },
            ]
        }
    )
    assert data == {
        "version": 2,
        "ethernets": {
            "nic0": {
                "match": {"macaddress": "52:54:00:aa:00:01"},
                "dhcp4": False,
                "addresses": ["192.0.2.10/24"],
                "gateway4": "192.0.2.1",
                "nameservers": {"addresses": ["192.0.2.53", "2001:db8::53"]},
            },
            "nic1": {"match": {"macaddress": "52:54:00:aa:00:02"}, "dhcp4": True, "dhcp6": True},
        },
    }
    v6 = _network(
        {
            "network": [
                {"nic": 0, "mode": "static", "address": "2001:db8::5/64", "gateway": "2001:db8::1"}
            ]
        }
    )
    assert v6["ethernets"]["nic0"]["gateway6"] == "2001:db8::1"


def test_a_network_for_a_nic_the_vm_lacks_is_refused() -> None:
    config = CloudInitConfig.model_validate({"network": [{"nic": 2, "mode": "dhcp"}]})
    with pytest.raises(InvalidRequest, match="names NIC 2, but the VM has 2 NIC"):
        compose(config, MACS, "i-1")


_PARSE = """
import json, sys, yaml
sys.path.insert(0, sys.argv[1] + "/usr/lib/python3/dist-packages")
from cloudinit.net.network_state import parse_net_config_data
state = parse_net_config_data(yaml.safe_load(sys.stdin.read()))
print(json.dumps([dict(i) for i in state.iter_interfaces()], default=str))
"""


def test_cloud_init_reads_the_network_config_as_meant() -> None:
    """cloud-init 22.4's own parser (from the unpacked Debian package) on the composed file."""
    text = compose(
        CloudInitConfig.model_validate(
            {
                "network": [
                    {
                        "nic": 0,
                        "mode": "static",
                        "address": "192.0.2.10/24",
                        "gateway": "192.0.2.1",
                        "dns": ["192.0.2.53"],
                    },
                    {"nic": 1, "mode": "dhcp"},
                ]
            }
        ),
        MACS,
        "i-1",
    ).network_config
    done = subprocess.run(
        [str(SYSTEM_PYTHON), "-I", "-W", "ignore", "-c", _PARSE, str(default_root())],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    static, dhcp = sorted(json.loads(done.stdout), key=lambda i: i["mac_address"])
    assert static["mac_address"] == "52:54:00:aa:00:01"
    (subnet,) = static["subnets"]
    assert (subnet["type"], subnet["address"], subnet["prefix"]) == ("static", "192.0.2.10", 24)
    assert subnet["gateway"] == "192.0.2.1" and subnet["dns_nameservers"] == ["192.0.2.53"]
    assert dhcp["mac_address"] == "52:54:00:aa:00:02"
    assert [s["type"] for s in dhcp["subnets"]] == ["dhcp4"]
