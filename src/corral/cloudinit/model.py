"""cloud-init settings as a request gives them: hostname, users with their SSH keys and
passwords, each NIC's network, and the user's own cloud-config.

Every refusal is a sentence saying what to change (a 422 at the API). A password arrives plain
as a ``SecretStr`` (never in a repr, a log or an answer) or already hashed in ``password_hash``;
``compose.seal`` turns the first into the second, and only hashes are kept. A JSON Schema
``pattern`` documents each string rule, while a validator checks it and says it in words
(pydantic would quote the regex).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyAddress,
    IPvAnyInterface,
    SecretStr,
    StrictBool,
    StringConstraints,
    model_validator,
)

from corral.model.power import not_bool

#: One DNS label (RFC 1123): letters, digits and inner hyphens, at most 63 characters.
HOSTNAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
HOSTNAME_RULE = (
    "a hostname is one DNS label (RFC 1123): 1-63 letters, digits and hyphens, not starting or "
    "ending with a hyphen (no dots: e.g. 'web1')"
)
#: Debian's adduser default NAME_REGEX, without the trailing '$' of machine accounts.
USER_NAME_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
USER_NAME_RULE = (
    "a user name is 1-32 characters from a-z 0-9 _ -, starting with a letter or '_' (e.g. 'alice')"
)
#: Users cloud-init or the image already own: ``default`` is cloud-init's word for the image's
#: default user (``ssh_authorized_keys`` at the top level go to it), ``root`` the image's.
RESERVED_USER_NAMES = frozenset({"root", "default"})
#: One line of an OpenSSH ``.pub`` file: ``TYPE BASE64 [COMMENT]``.
SSH_KEY_PATTERN = r"^[^\x00-\x1f\x7f]+$"
SSH_KEY_MAX_LENGTH = 16_384
#: crypt(3) hashes the guest's libxcrypt (Debian 12) verifies: SHA-512, SHA-256, yescrypt,
#: bcrypt — e.g. from ``openssl passwd -6`` or ``mkpasswd``.
PASSWORD_HASH_PATTERN = r"^\$(?:6|5|y|2b|2y)\$[./0-9A-Za-z$=,]{8,300}$"
PASSWORD_HASH_RULE = (
    "password_hash must be a crypt(3) hash such as the output of `openssl passwd -6` "
    "('$6$SALT$HASH'; also $5$, $y$ yescrypt, $2b$ bcrypt); to send the password itself, "
    "use 'password'"
)
#: OpenSSL's ``passwd`` (which hashes them) reads no more of a password.
PASSWORD_MAX_BYTES = 256
#: The user's own cloud-config: 256 KiB is far more than a seed's user-data usually holds.
USER_DATA_MAX_LENGTH = 262_144
MAX_USERS = 32
MAX_KEYS = 64
MAX_NICS = 32
MAX_DNS = 3  # resolv.conf reads three name servers
#: OpenSSH (9.2 in Debian 12) ignores RSA keys under this many bits (RequiredRSASize).
RSA_MIN_BITS = 1024


def _rule(pattern: str, words: str) -> tuple[Any, Any]:
    """The pattern in the JSON Schema, checked by a validator that says ``words``."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if regex.match(value) is None:
            raise ValueError(words)
        return value

    return AfterValidator(check), Field(json_schema_extra={"pattern": pattern})


def _ssh_key(value: str) -> str:
    """The key, parsed by ``cryptography``; the line comes back with its comment and single
    blanks between its parts."""
    parts = value.strip().split(None, 2)
    if parts and parts[0] == "ssh-dss":
        # Before parsing: cryptography warns that it will stop reading DSA keys.
        raise ValueError(
            f"SSH key {_abbreviated(value)!r}: the guest's OpenSSH refuses DSA keys; use an "
            "Ed25519 key (ssh-keygen -t ed25519)"
        )
    if len(parts) < 2:
        raise ValueError(
            f"SSH key {_abbreviated(value)!r} is not an OpenSSH public key: give one line "
            "'TYPE BASE64 [COMMENT]' as in ~/.ssh/id_ed25519.pub"
        )
    try:
        key = load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except UnsupportedAlgorithm:
        raise ValueError(
            f"SSH key {_abbreviated(value)!r}: {parts[0][:40]!r} is not a key type; give the "
            "key alone, without authorized_keys options (from=..., command=...)"
        ) from None
    except ValueError:
        raise ValueError(
            f"SSH key {_abbreviated(value)!r} does not parse (its base64 part is cut or "
            "damaged): paste the whole line of the .pub file"
        ) from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < RSA_MIN_BITS:
        raise ValueError(
            f"SSH key {_abbreviated(value)!r}: an RSA key of {key.key_size} bits is ignored "
            f"by the guest's OpenSSH (at least {RSA_MIN_BITS}); use an Ed25519 key"
        )
    return " ".join(parts)


def _abbreviated(value: str) -> str:
    return value if len(value) <= 40 else value[:20] + "…" + value[-12:]


def _password(value: SecretStr) -> SecretStr:
    # Said without the password itself: these messages reach answers and may reach logs.
    secret = value.get_secret_value()
    if not secret:
        raise ValueError("the password is empty: give one, or leave 'password' out")
    if len(secret.encode()) > PASSWORD_MAX_BYTES:
        raise ValueError(
            f"the password is longer than {PASSWORD_MAX_BYTES} bytes (UTF-8): choose a shorter one"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in secret):
        raise ValueError("the password holds control characters (line breaks, tabs): remove them")
    return value


Hostname = Annotated[str, StringConstraints(max_length=63), *_rule(HOSTNAME_PATTERN, HOSTNAME_RULE)]
UserName = Annotated[
    str, StringConstraints(max_length=32), *_rule(USER_NAME_PATTERN, USER_NAME_RULE)
]
SshPublicKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=SSH_KEY_MAX_LENGTH),
    *_rule(SSH_KEY_PATTERN, "an SSH key is one line, without line breaks or control characters"),
    AfterValidator(_ssh_key),
]
Password = Annotated[SecretStr, AfterValidator(_password)]
PasswordHash = Annotated[
    str, StringConstraints(max_length=310), *_rule(PASSWORD_HASH_PATTERN, PASSWORD_HASH_RULE)
]
#: Bounds before the validator, or the document shows them as 'ge'/'le' (no client reads).
UserData = Annotated[str, StringConstraints(max_length=USER_DATA_MAX_LENGTH)]
NicIndex = Annotated[
    int,
    Field(ge=0, le=MAX_NICS - 1, description="the NIC's position among the VM's NICs, from 0"),
    BeforeValidator(not_bool),
]


class _Strict(BaseModel):
    # hide_input_in_errors: a ValidationError's text (a log line, a traceback) would otherwise
    # show the input, plain passwords and user-data included.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class CloudUser(_Strict):
    """A user cloud-init creates in the guest."""

    name: UserName
    ssh_authorized_keys: list[SshPublicKey] = Field(default_factory=list, max_length=MAX_KEYS)
    password: Password | None = Field(
        default=None,
        description="the user's password in plain text; stored hashed (SHA-512 crypt), never "
        "returned. Console logins; SSH password logins stay as the image has them",
    )
    password_hash: PasswordHash | None = Field(
        default=None, repr=False, description="instead of 'password': its crypt(3) hash"
    )
    sudo: StrictBool = Field(default=False, description="sudo for every command, no password")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.name in RESERVED_USER_NAMES:
            raise ValueError(
                f"user {self.name!r} is the image's own: give its SSH keys in the top-level "
                "ssh_authorized_keys (the image's default user), or choose another name"
            )
        if self.password is not None and self.password_hash is not None:
            raise ValueError(f"user {self.name!r}: give 'password' or 'password_hash', not both")
        return self


class DhcpNic(_Strict):
    """A NIC configured by DHCP (IPv4, and IPv6 when asked)."""

    nic: NicIndex
    mode: Literal["dhcp"]
    dhcp6: StrictBool = Field(default=False, description="also ask DHCPv6")


def _text(value: object) -> object:
    """Addresses come as text: ``ipaddress`` would also take a number (and a boolean as one,
    with a DeprecationWarning), which no JSON client means as an address."""
    if isinstance(value, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value
    raise ValueError("give the address as text, e.g. 192.0.2.10")


Interface = Annotated[IPvAnyInterface, BeforeValidator(_text)]
Address = Annotated[IPvAnyAddress, BeforeValidator(_text)]


class StaticNic(_Strict):
    """A NIC with a fixed address."""

    nic: NicIndex
    mode: Literal["static"]
    address: Interface = Field(description="the address with its prefix: 192.0.2.10/24")
    gateway: Address | None = Field(
        default=None, description="the default route's next hop, inside the address's network"
    )
    dns: list[Address] = Field(default_factory=list, max_length=MAX_DNS, description="name servers")

    @model_validator(mode="after")
    def _gateway_in_network(self) -> Self:
        iface = self.address
        network = iface.network
        usable = network.version == 6 or network.prefixlen >= 31
        if not usable and iface.ip in (network.network_address, network.broadcast_address):
            raise ValueError(
                f"NIC {self.nic}: {iface.ip} is the {_edge(iface)} address of {network}, "
                "not one a host can use: choose an address inside it"
            )
        gateway = self.gateway
        if gateway is None:
            return self
        if gateway.version != iface.version or gateway not in network:
            raise ValueError(
                f"NIC {self.nic}: gateway {gateway} is outside {network} (the network of "
                f"{iface}): a gateway must be reachable on the NIC's own network; fix the "
                "gateway or the prefix"
            )
        if gateway == iface.ip:
            raise ValueError(f"NIC {self.nic}: the gateway {gateway} is the NIC's own address")
        return self


def _edge(iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str:
    return "network" if iface.ip == iface.network.network_address else "broadcast"


#: One NIC's network; ``mode`` says which fields it takes.
NicNetwork = Annotated[DhcpNic | StaticNic, Field(discriminator="mode")]


class CloudInitConfig(_Strict):
    """What cloud-init sets up in a VM on its first boot (``compose`` makes the seed's files).

    Corral's fields and the user's ``user_data`` are merged; ``compose`` says what wins."""

    hostname: Hostname | None = Field(default=None, description="the guest's host name")
    users: list[CloudUser] = Field(default_factory=list, max_length=MAX_USERS)
    ssh_authorized_keys: list[SshPublicKey] = Field(
        default_factory=list,
        max_length=MAX_KEYS,
        description="keys for the image's default user (debian on Debian's cloud images)",
    )
    network: list[NicNetwork] = Field(
        default_factory=list,
        max_length=MAX_NICS,
        description="per NIC; NICs not named keep the image's own network configuration",
    )
    user_data: UserData | None = Field(
        default=None,
        description="your own cloud-config (YAML starting with '#cloud-config'), merged with "
        "the fields above; checked by cloud-init's schema, never returned",
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [u.name for u in self.users]
        nics = [str(n.nic) for n in self.network]
        for what, values in (("user", names), ("NIC", nics)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ValueError(
                    f"{what} {', '.join(twice)} appears more than once: give each {what} once"
                )
        return self


class CloudUserInfo(BaseModel):
    """A user as shown: never the password or its hash, only whether one is set."""

    name: str
    ssh_authorized_keys: list[str]
    has_password: bool
    sudo: bool


class UserDataInfo(BaseModel):
    """The user-data as shown: never its text."""

    sha256: str
    size_bytes: int


class CloudInitInfo(BaseModel):
    """A VM's cloud-init settings as every role may read them: no password, no hash, no
    user-data (its digest and size instead), and who set them when."""

    vm: str
    hostname: str | None
    users: list[CloudUserInfo]
    ssh_authorized_keys: list[str]
    network: list[NicNetwork]
    user_data: UserDataInfo | None
    instance_id: str
    set_by: str
    set_at: datetime

    @classmethod
    def of(
        cls,
        vm: str,
        config: CloudInitConfig,
        instance_id: str,
        user_data: UserDataInfo | None,
        set_by: str,
        set_at: datetime,
    ) -> CloudInitInfo:
        users = [
            CloudUserInfo(
                name=u.name,
                ssh_authorized_keys=list(u.ssh_authorized_keys),
                has_password=u.password is not None or u.password_hash is not None,
                sudo=u.sudo,
            )
            for u in config.users
        ]
        return cls(
            vm=vm,
            hostname=config.hostname,
            users=users,
            ssh_authorized_keys=list(config.ssh_authorized_keys),
            network=list(config.network),
            user_data=user_data,
            instance_id=instance_id,
            set_by=set_by,
            set_at=set_at,
        )
