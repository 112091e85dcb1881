"""Why the source host's ``ssh`` could not reach the destination, in words an administrator
can act on (pure). Shared by the ssh transport's pre-flight probe and by the explanation of a
failed migration, so both name the same cause.

ssh's own words are recognised, never passed on whole: its output can quote the far end (a
banner, a disconnect message). The sentence quotes the recognised phrase, which is ssh's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SshLogin:
    """Who the source's ssh logs in as, where: what the transport's ``qemu+ssh://`` URI says."""

    user: str
    #: The destination's address (or name) as ssh is given it; None: not known here.
    host: str | None
    port: int = 22


def _where(destination: str, login: SshLogin) -> str:
    at = login.host or f"{destination}'s address"
    return f"{at} port {login.port}" if login.port != 22 else at


def _keyscan(login: SshLogin) -> str:
    port = f"-p {login.port} " if login.port != 22 else ""
    return f"ssh-keyscan {port}{login.host or 'ADDRESS'}"


def _entry(login: SshLogin) -> str:
    """The host's name in known_hosts (``[host]:port`` for another port than 22)."""
    host = login.host or "ADDRESS"
    return f"[{host}]:{login.port}" if login.port != 22 else host


def ssh_failure(said: str, source: str, destination: str, login: SshLogin) -> str | None:
    """The cause in ``said`` (what ssh printed, or a libvirt message quoting it) and what to
    do, or None when it holds none of ssh's known failures."""
    low = said.lower()
    where = _where(destination, login)
    host = login.host or f"{destination}'s address"
    # ssh prints "Host key verification failed" after this one too: test it first.
    if "remote host identification has changed" in low:
        return (
            f"host key verification failed for {destination} ({where}): the key it presents "
            f"is not the one {source} recorded (REMOTE HOST IDENTIFICATION HAS CHANGED); if "
            f"{destination} was reinstalled, replace the old entry on {source} "
            f"(`ssh-keygen -R {_entry(login)}`, then `{_keyscan(login)}`), otherwise something "
            f"is impersonating {destination}"
        )
    if "host key verification failed" in low:
        return (
            f"host key verification failed for {destination} ({where}): {source}'s ssh does "
            f"not know {destination}'s host key; add it to the known hosts of root's ssh on "
            f"{source} (~/.ssh/known_hosts, or the file the transport's `command` wrapper "
            f"names), e.g. on {source}: `{_keyscan(login)} >> ~/.ssh/known_hosts` after "
            f"comparing the key with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on "
            f"{destination}"
        )
    if "permission denied" in low or "too many authentication failures" in low:
        return (
            f"{destination}'s sshd refused the key of root's ssh on {source} for user "
            f"{login.user} (Permission denied): add that public key (or the transport's "
            f"`keyfile`'s) to ~{login.user}/.ssh/authorized_keys on {destination}"
        )
    if "connection refused" in low:
        return (
            f"nothing accepts SSH on {destination} ({where}; Connection refused): start sshd "
            "there or fix the port Corral recorded at enrollment"
        )
    for words in ("connection timed out", "no route to host", "network is unreachable"):
        if words in low:
            return (
                f"{source} cannot reach {destination}'s sshd ({where}; {words.capitalize()}): "
                f"check the network and firewalls between {source} and {destination}"
            )
    if "could not resolve hostname" in low:
        return (
            f"{source} cannot resolve {host} (Could not resolve hostname): enroll "
            f"{destination} with an address, or make the name resolve on {source}"
        )
    return None
