"""The NoCloud seed's three files from a ``CloudInitConfig``: ``meta-data``, ``user-data`` (the
user's cloud-config merged with Corral's settings) and ``network-config`` (version 2, each
NIC matched by its MAC address).

Merging, when both say something (``compose``'s rule, the one the API documents):

* keys only the user's ``user_data`` has are kept as given;
* ``hostname``: Corral's field wins (it is also meta-data's ``local-hostname``);
  ``manage_etc_hosts: true`` comes with it unless the user-data sets that key;
* ``ssh_authorized_keys`` (the image's default user): the user-data's keys, then Corral's;
* ``users``: the user-data's list is kept, in its order, and Corral's users follow it; a user
  in both is one entry: the user-data's keys, Corral's password and ``sudo: true`` over
  them, the SSH keys of both. Corral's users get ``/bin/bash`` unless the user-data gives a
  ``shell``. With Corral's users and no ``users`` in the
  user-data, the list starts with ``default`` so that the image's default user is still made
  (cloud-init makes only the users listed);
* passwords are only ever written as hashes (``hashed_passwd``, ``lock_passwd: false``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from corral.cloudinit.model import CloudInitConfig, CloudUser, DhcpNic, NicNetwork, StaticNic
from corral.cloudinit.passwords import sha512_crypt
from corral.cloudinit.seed import meta_data_for
from corral.errors import InvalidRequest

CLOUD_CONFIG_HEADER = "#cloud-config"
#: What ``sudo: true`` gives a user: every command, without a password (no password may be set).
SUDO_RULE = "ALL=(ALL) NOPASSWD:ALL"
SHELL = "/bin/bash"


@dataclass(frozen=True)
class SeedFiles:
    """The NoCloud seed's files, as text (``network_config`` None: the image's own network)."""

    meta_data: str
    user_data: str
    network_config: str | None


def seal(config: CloudInitConfig) -> CloudInitConfig:
    """``config`` with every plain ``password`` replaced by its ``password_hash``: what may be
    stored (and given to ``compose`` again to rebuild the seed)."""
    users = [
        user.model_copy(update={"password": None, "password_hash": sha512_crypt(user.password)})
        if user.password is not None
        else user
        for user in config.users
    ]
    return config.model_copy(update={"users": users})


def compose(config: CloudInitConfig, macs: Sequence[str], instance_id: str) -> SeedFiles:
    """The seed of a VM whose NICs have ``macs`` (in the order ``network``'s ``nic`` indexes
    count them). ``instance_id`` tells cloud-init a new instance: its per-instance modules
    (users, keys, hostname) run again when it changes. Raises ``InvalidRequest`` when the
    user-data is not a cloud-config mapping or ``network`` names a NIC the VM does not have."""
    sealed = seal(config)
    return SeedFiles(
        meta_data=meta_data(instance_id, sealed.hostname),
        user_data=user_data(sealed),
        network_config=network_config(sealed.network, macs),
    )


def meta_data(instance_id: str, hostname: str | None) -> str:
    if hostname is not None:
        return meta_data_for(instance_id, hostname)
    return _yaml({"instance-id": instance_id})


def user_data(config: CloudInitConfig) -> str:
    """The merged ``#cloud-config`` (see the module's rules). Plain passwords are hashed here
    too, though ``seal``ed configs carry only hashes."""
    merged = _users_data(config.user_data)
    if config.hostname is not None:
        merged["hostname"] = config.hostname
        merged.setdefault("manage_etc_hosts", True)
    if config.ssh_authorized_keys:
        merged["ssh_authorized_keys"] = _union(
            _list(merged.get("ssh_authorized_keys"), "ssh_authorized_keys"),
            config.ssh_authorized_keys,
        )
    if config.users:
        merged["users"] = _merged_users(merged.get("users"), config.users)
    return f"{CLOUD_CONFIG_HEADER}\n{_yaml(merged)}"


def network_config(network: Sequence[NicNetwork], macs: Sequence[str]) -> str | None:
    """Network config version 2: one ``ethernets`` entry per configured NIC, matched by MAC
    (the guest's own interface names are kept). None when no NIC is configured."""
    if not network:
        return None
    ethernets: dict[str, dict[str, Any]] = {}
    for nic in sorted(network, key=lambda n: n.nic):
        if nic.nic >= len(macs):
            raise InvalidRequest(
                f"network names NIC {nic.nic}, but the VM has {len(macs)} NIC(s) "
                f"(numbered from 0): add a NIC or remove that entry"
            )
        ethernets[f"nic{nic.nic}"] = {"match": {"macaddress": macs[nic.nic].lower()}, **_nic(nic)}
    return _yaml({"version": 2, "ethernets": ethernets})


def _nic(nic: NicNetwork) -> dict[str, Any]:
    if isinstance(nic, DhcpNic):
        return {"dhcp4": True, **({"dhcp6": True} if nic.dhcp6 else {})}
    assert isinstance(nic, StaticNic)
    entry: dict[str, Any] = {"dhcp4": False, "addresses": [str(nic.address)]}
    if nic.gateway is not None:
        # gateway4/6, not a 'to: default' route: cloud-init 22.4 (Debian 12) reads no 'default'.
        entry[f"gateway{nic.gateway.version}"] = str(nic.gateway)
    if nic.dns:
        entry["nameservers"] = {"addresses": [str(a) for a in nic.dns]}
    return entry


def _users_data(text: str | None) -> dict[str, Any]:
    """The user's cloud-config as a mapping ({} when none)."""
    if text is None:
        return {}
    if not text.startswith(CLOUD_CONFIG_HEADER):
        raise InvalidRequest(
            f"user_data must be cloud-config: YAML whose first line is {CLOUD_CONFIG_HEADER!r}"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Where, not what: the YAML's own words would quote the user-data, secrets and all.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InvalidRequest(f"user_data is not valid YAML{where}") from None
    except RecursionError:
        raise InvalidRequest("user_data nests too deeply to be read") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest("user_data must be a YAML mapping (key: value lines)")
    return data


def _merged_users(theirs: object, ours: Sequence[CloudUser]) -> list[Any]:
    entries: list[Any] = ["default"] if theirs is None else list(_list(theirs, "users"))
    for user in ours:
        index = next((i for i, e in enumerate(entries) if _user_name(e) == user.name), None)
        if index is None:
            entries.append(_user_entry(user, {}))
        else:
            given = entries[index]
            entries[index] = _user_entry(user, given if isinstance(given, dict) else {})
    return entries


def _user_entry(user: CloudUser, given: dict[str, Any]) -> dict[str, Any]:
    entry = dict(given)
    entry.update(name=user.name, shell=entry.get("shell", SHELL))
    keys = _union(_list(given.get("ssh_authorized_keys"), "users' ssh_authorized_keys"), [])
    if user.ssh_authorized_keys or keys:
        entry["ssh_authorized_keys"] = _union(keys, user.ssh_authorized_keys)
    hashed = sha512_crypt(user.password) if user.password is not None else user.password_hash
    if hashed is not None:
        entry.pop("passwd", None)
        entry.pop("plain_text_passwd", None)
        entry.update(hashed_passwd=hashed, lock_passwd=False)
    if user.sudo:
        entry["sudo"] = SUDO_RULE
    return entry


def _user_name(entry: object) -> object:
    return entry.get("name") if isinstance(entry, dict) else entry


def _list(value: object, key: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]  # cloud-init takes one string for a list of one
    if not isinstance(value, list):
        raise InvalidRequest(f"user_data's {key} must be a list")
    return value


def _union(first: Sequence[Any], second: Sequence[Any]) -> list[Any]:
    """Both, in order, each once (by equality: the user-data's items need not be hashable)."""
    out: list[Any] = []
    for item in (*first, *second):
        if item not in out:
            out.append(item)
    return out


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
