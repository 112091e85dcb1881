"""Scripted console automation: type on a VM's keyboard, wait for an image on its screen."""

from __future__ import annotations

from fastapi import APIRouter, Response

from corral.api.deps import Operator, Svc
from corral.model.console import ScreenMatch, TypeRequest, WaitScreenRequest

router = APIRouter(tags=["vms"])


@router.post("/vms/{name}/console/type", name="vm.console.type", status_code=204)
async def type_text(name: str, body: TypeRequest, svc: Svc, _: Operator) -> Response:
    """Type ``text`` (US layout), then press ``keys``; answers once the VM's display has
    received every key event."""
    await svc.vms.console.type_text(name, body)
    return Response(status_code=204)


@router.post(
    "/vms/{name}/console/wait-screen",
    name="vm.console.wait_screen",
    responses={504: {"description": "the image did not appear within timeout_s"}},
)
async def wait_screen(name: str, body: WaitScreenRequest, svc: Svc, _: Operator) -> ScreenMatch:
    """Wait until the PNG template appears on the screen, pixel for pixel (operators only: the
    request may hold a VNC connection for up to ``timeout_s``)."""
    return await svc.vms.console.wait_screen(name, body.image_png(), body.timeout_s)
