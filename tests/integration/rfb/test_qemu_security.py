"""Security types against QEMU: VNC authentication, VeNCrypt X509None and X509Vnc over TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from pathlib import Path

import pytest

from corral.rfb import (
    AuthenticationFailed,
    RFBClient,
    SecurityType,
    VeNCryptSubtype,
    open_upstream_socket,
)
from tests.integration.rfb._certs import make_pki
from tests.integration.rfb._qemu import QMP, qemu_vnc

pytestmark = pytest.mark.integration


def _client_context(pki: Path, with_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki / "ca-cert.pem"))
    if with_cert:
        ctx.load_cert_chain(pki / "client-cert.pem", pki / "client-key.pem")
    return ctx


async def _set_password(qmp_socket: Path, password: str) -> None:
    qmp = await QMP.connect(qmp_socket)
    try:
        await qmp.execute("change-vnc-password", password=password)
    finally:
        await qmp.close()


async def test_vnc_authentication(tmp_path: Path) -> None:
    with qemu_vnc(tmp_path, vnc_options=",password=on") as (vnc, qmp):
        await _set_password(qmp, "s3cret")
        async with await RFBClient.connect_unix(str(vnc), password="s3cret") as client:
            assert client.connected is not None
            assert client.connected.security == SecurityType.VNC_AUTH
            assert (await client.screenshot()).shape == (client.height, client.width, 3)
        with pytest.raises(AuthenticationFailed, match="rejected"):
            await RFBClient.connect_unix(str(vnc), password="wrong")
        with pytest.raises(AuthenticationFailed):  # no password: nothing we can offer
            await RFBClient.connect_unix(str(vnc))


@pytest.mark.parametrize("password", [None, "tls-pass"], ids=["x509none", "x509vnc"])
async def test_vencrypt_x509(tmp_path: Path, password: str | None) -> None:
    pki = tmp_path / "pki"
    make_pki(pki)
    tls = f"tls-creds-x509,id=tls0,dir={pki},endpoint=server,verify-peer=yes"
    options = ",tls-creds=tls0" + (",password=on" if password else "")
    with qemu_vnc(tmp_path, ["-object", tls], vnc_options=options) as (vnc, qmp):
        if password:
            await _set_password(qmp, password)
        client = await RFBClient.connect_unix(
            str(vnc), ssl_context=_client_context(pki), server_hostname="localhost",
            password=password,
        )  # fmt: skip
        async with client:
            assert client.connected is not None
            assert client.connected.security == SecurityType.VENCRYPT
            wanted = VeNCryptSubtype.X509_VNC if password else VeNCryptSubtype.X509_NONE
            assert client.conn.vencrypt_subtype == wanted
            assert (await client.screenshot()).any()
        # Without a client certificate QEMU ends the connection after the TLS handshake.
        with pytest.raises(AuthenticationFailed, match="client certificate"):
            await RFBClient.connect_unix(
                str(vnc), ssl_context=_client_context(pki, with_cert=False),
                server_hostname="localhost", password=password,
            )  # fmt: skip


async def test_a_relay_upstream_streams_the_screen_through_vencrypt(tmp_path: Path) -> None:
    """The console proxy's upstream to a remote host: TLS, then the server's bytes as chunks."""
    pki = tmp_path / "pki"
    make_pki(pki)
    tls = f"tls-creds-x509,id=tls0,dir={pki},endpoint=server,verify-peer=yes"
    with qemu_vnc(tmp_path, ["-object", tls], vnc_options=",tls-creds=tls0") as (vnc, _):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(vnc))
        upstream = await open_upstream_socket(
            sock, ssl_context=_client_context(pki), server_hostname="localhost"
        )
        width, height = upstream.connected.width, upstream.connected.height
        stream = await upstream.server_stream()
        # As a viewer would: raw pixels in the server's format, one full update (about a MB,
        # read while lagging behind on purpose).
        upstream.writer.write(
            struct.pack(">BxHi", 2, 1, 0) + struct.pack(">BBHHHH", 3, 0, 0, 0, width, height)
        )
        await asyncio.sleep(0.5)
        received = bytearray()

        async def upto(n: int) -> None:
            while len(received) < n:
                data = await stream.read()
                assert data, "the server closed the connection"
                received.extend(data)

        async with asyncio.timeout(30):
            await upto(4)
            assert received[0] == 0  # FramebufferUpdate
            end = 4
            for _ in range(struct.unpack_from(">H", received, 2)[0]):
                await upto(end + 12)
                _, _, w, h, encoding = struct.unpack_from(">HHHHi", received, end)
                assert encoding == 0
                end += 12 + w * h * 4
            await upto(end)
        # The screen may have changed from 640x480 to 720x400 since ServerInit: QEMU sends
        # the part of the request that is still on it.
        assert len(received) == end > 640 * 400 * 4
        async with asyncio.timeout(10):
            await upstream.close()


async def test_vencrypt_refuses_a_server_from_another_ca(tmp_path: Path) -> None:
    pki, other = tmp_path / "pki", tmp_path / "other"
    make_pki(pki)
    make_pki(other, "some-other-ca")
    tls = f"tls-creds-x509,id=tls0,dir={pki},endpoint=server,verify-peer=yes"
    with qemu_vnc(tmp_path, ["-object", tls], vnc_options=",tls-creds=tls0") as (vnc, _):
        from corral.rfb import RFBConnectionError

        with pytest.raises(RFBConnectionError, match="certificate verify failed"):
            await RFBClient.connect_unix(
                str(vnc), ssl_context=_client_context(other), server_hostname="localhost"
            )
    await asyncio.sleep(0)
