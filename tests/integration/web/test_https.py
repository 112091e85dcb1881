"""Beyond loopback Corral serves HTTPS only: a real ``corral serve`` listening on every address
of a private network namespace (so nothing is reachable from outside the test), checked from
inside it: plain HTTP gets nothing, HTTPS works with Corral's own CA, the browser session's
cookie is Secure, and the local CLI (set up by ``corral admin init``) trusts the CA by itself."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.testbed.corral_server import free_port

pytestmark = pytest.mark.integration

PORT = free_port()

CHECK = textwrap.dedent(
    """
    import json, re, sys, time
    import httpx
    port, ca = int(sys.argv[1]), sys.argv[2]
    base = f"https://127.0.0.1:{port}"
    out = {}
    deadline = time.monotonic() + 60
    while True:
        try:
            out["healthz"] = httpx.get(base + "/healthz", verify=ca, timeout=2).status_code
            if out["healthz"] == 200:  # not 503 "starting"
                break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    try:
        out["plain"] = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
    except httpx.HTTPError as exc:
        out["plain"] = type(exc).__name__
    try:
        httpx.get(base + "/healthz", timeout=5)
        out["unverified"] = "accepted"
    except httpx.ConnectError as exc:
        out["unverified"] = "refused: " + str(exc)[:80]
    with httpx.Client(base_url=base, verify=ca) as b:
        page = b.get("/login")
        out["hsts"] = page.headers.get("strict-transport-security")
        token = re.search(r'name="csrf_token" value="([^"]*)"', page.text).group(1)
        login = b.post("/login", data={"username": "admin", "password": sys.argv[3],
                                       "csrf_token": token}, follow_redirects=False)
        out["cookie"] = next(c for c in login.headers.get_list("set-cookie")
                             if c.startswith("corral_session="))
    print(json.dumps(out))
    """
)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"corral-tls-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_beyond_loopback_only_https(netns: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CORRAL_DATA_DIR": str(tmp_path / "data"),
        "CORRAL_CONFIG": str(tmp_path / "corral.toml"),
        "CORRAL_CONFIG_DIR": str(tmp_path / "cli"),
        "CORRAL_LOCAL_HOST_URI": "test:///default",
        "CORRAL_LISTEN_HOST": "0.0.0.0",
        "CORRAL_LISTEN_PORT": str(PORT),
        "CORRAL_POOL_DIR": str(tmp_path / "pool"),
    }
    corral = [sys.executable, "-m", "corral.cli.main"]
    init = subprocess.run([*corral, "admin", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    lines = [line.strip() for line in init.stdout.splitlines() if line.strip()]
    password = lines[lines.index(next(x for x in lines if "password" in x)) + 1]
    creds = (tmp_path / "cli" / "credentials.toml").read_text()
    assert f'url = "https://127.0.0.1:{PORT}"' in creds
    ca = tmp_path / "data" / "pki" / "web-ca" / "ca-cert.pem"
    assert f'ca_cert = "{ca}"' in creds

    inside = ["ip", "netns", "exec", netns]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([*inside, *corral, "serve"], env=env, stdout=log, stderr=log)
    try:
        checked = subprocess.run(
            [*inside, sys.executable, "-c", CHECK, str(PORT), str(ca), password],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr + (tmp_path / "server.log").read_text()
        seen = json.loads(checked.stdout)
        assert seen["healthz"] == 200
        assert seen["plain"] in ("RemoteProtocolError", "ReadError", "ConnectError"), seen
        assert seen["unverified"].startswith("refused"), seen  # not a CA anyone trusts
        assert seen["hsts"] and "max-age" in seen["hsts"]
        flags = {f.strip().lower() for f in seen["cookie"].split(";")}
        assert {"secure", "httponly", "samesite=strict"} <= flags
        # The local CLI, as `corral admin init` left it: https and the CA, no flags.
        cli = subprocess.run(
            [*inside, *corral, "--json", "host", "list"],
            env={k: v for k, v in env.items() if k != "CORRAL_URL"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["items"][0]["name"] == "local"
        assert "serving https://127.0.0.1" in (tmp_path / "server.log").read_text()
    finally:
        server.terminate()
        server.wait(30)
        log.close()
