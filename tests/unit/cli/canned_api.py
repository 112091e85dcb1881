"""A tiny real FastAPI app speaking the API contract with canned data, for testing the CLI.

It is not the thing under test: the CLI is. It answers what docs/api-contract.md promises
(problem+json errors, 202 + TaskInfo for long work, Bearer auth, the serial WebSocket) from an
in-memory ``CannedState`` that each test arranges, and it records every request so tests can
check what the CLI sent.

It keeps only what the real app on the test driver cannot be made to answer (see
``_real.py``): scripted task progress, several hosts, power plans, imports, serial consoles and
logs, server errors. Every answer it gives is checked against the real /openapi.json
(``_contract.py``).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.websockets import WebSocketDisconnect

from corral.model.auth import UserInfo
from corral.model.host import HostCapabilities, HostInfo
from corral.model.image import ImageInfo, ImageKind, ImageUploaded
from corral.model.task import TaskInfo, TaskState
from corral.model.vm import Accelerator, DiskInfo, VmInfo, VmState

ISO_MAGIC_OFFSET = 32769

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def vm_info(name: str, state: VmState = VmState.RUNNING, host: str = "local") -> VmInfo:
    return VmInfo(
        uuid=f"00000000-0000-0000-0000-{abs(hash(name)) % 10**12:012d}",
        name=name,
        host=host,
        state=state,
        vcpus=2,
        memory_mib=2048,
        uptime_s=3 * 3600 + 25 * 60 if state == VmState.RUNNING else None,
        cpu_time_s=75.5,
        accelerator=Accelerator.TCG,
        disks=[
            DiskInfo(
                name="root",
                target="vda",
                path=f"/pool/{name}-root.qcow2",
                bus="virtio",
                capacity_bytes=10 * 2**30,
            )
        ],
        created_at=NOW,
    )


@dataclass
class CannedState:
    """What the canned API knows. Tests change it directly."""

    token: str = "tok-secret-0123456789"
    vms: dict[str, VmInfo] = field(default_factory=dict)
    hosts: dict[str, HostInfo] = field(default_factory=dict)
    users: dict[str, UserInfo] = field(default_factory=dict)
    images: dict[str, ImageInfo] = field(default_factory=dict)
    #: Bytes each upload received, by image name.
    uploads: dict[str, bytes] = field(default_factory=dict)
    logs: dict[str, bytearray] = field(default_factory=dict)
    #: Successive answers of GET /tasks/{id}: each GET pops one until the last remains.
    task_answers: dict[str, list[TaskInfo]] = field(default_factory=dict)
    #: How the next task of a kind goes: a list of field updates, one per GET /tasks/{id}.
    task_plans: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any, dict[str, str]]] = field(default_factory=list)
    serial_close: tuple[int, str] | None = None
    #: GET /power/plan and /power/status answers (PowerPlan, PowerStatus as JSON).
    power_plan: dict[str, Any] | None = None
    power_status: dict[str, Any] | None = None
    serial_received: bytearray = field(default_factory=bytearray)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        """Back to a fresh state (one server serves the whole session)."""
        self.__dict__.update(CannedState().__dict__)

    def new_task(self, kind: str, target: str) -> TaskInfo:
        task = TaskInfo(
            id=f"task-{next(self._ids)}",
            kind=kind,
            target=target,
            state=TaskState.PENDING,
            created_by="admin",
            created_at=NOW,
            updated_at=NOW,
        )
        answers, current = [], task
        for update in self.task_plans.get(kind, [{"state": "succeeded", "progress": 1}]):
            current = TaskInfo.model_validate({**current.model_dump(), **update})
            answers.append(current)
        self.task_answers[task.id] = answers
        return task

    def task(self, task_id: str) -> TaskInfo | None:
        answers = self.task_answers.get(task_id)
        if not answers:
            return None
        return answers.pop(0) if len(answers) > 1 else answers[0]


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _json(model: Any, status: int = 200) -> JSONResponse:
    if isinstance(model, list):
        return JSONResponse([m.model_dump(mode="json") for m in model], status_code=status)
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


def _page(items: list[Any]) -> JSONResponse:
    """A list route's answer: here always its one and only page."""
    body = {"items": [m.model_dump(mode="json") for m in items], "next_cursor": None}
    return JSONResponse(body)


def _task_response(task: TaskInfo) -> JSONResponse:
    response = _json(task, 202)
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    return response


def build_app(state: CannedState) -> FastAPI:
    app = FastAPI()
    api = APIRouter(prefix="/api/v1")

    @app.middleware("http")
    async def auth_and_record(request: Request, call_next: Any) -> Response:
        body = await request.body()
        state.requests.append(
            (
                request.method,
                request.url.path,
                body.decode(errors="replace") or None,
                dict(request.query_params),
            )
        )
        if request.url.path != "/api/v1/auth/login" and request.url.path.startswith("/api/"):
            header = request.headers.get("authorization", "")
            if header != f"Bearer {state.token}":
                return problem(401, "Authentication required")
        response: Response = await call_next(request)
        return response

    _vm_routes(api, state)
    _image_routes(api, state)
    _other_routes(api, state)
    _power_routes(api, state)
    app.include_router(api)
    _serial_route(app, state)
    return app


def _vm_or_404(state: CannedState, name: str) -> VmInfo | JSONResponse:
    vm = state.vms.get(name)
    if vm is None:
        return problem(404, f"no VM named {name}: `corral vm list` shows the VMs")
    return vm


def _vm_routes(api: APIRouter, state: CannedState) -> None:
    @api.get("/vms")
    async def list_vms(host: str | None = None) -> Response:
        return _page([vm for vm in state.vms.values() if host is None or vm.host == host])

    @api.post("/vms")
    async def create_vm(body: dict[str, Any]) -> Response:
        name = body["name"]
        if name == "invalid422":
            return problem(422, "invalid VM spec", errors=[
                {"loc": "disks.0.size_gib", "msg": "must be at most 65536"},
                {"loc": "vcpus", "msg": "host local has only 2 CPUs"},
            ])  # fmt: skip
        if name in state.vms:
            return problem(409, f"a VM named {name} exists already")
        vm = vm_info(name, VmState.RUNNING if body.get("start") else VmState.SHUTOFF).model_copy(
            update={"vcpus": body.get("vcpus", 1), "memory_mib": body.get("memory_mib", 512)}
        )
        state.vms[name] = vm
        if any("import_path" in d for d in body.get("disks", [])):
            return _task_response(state.new_task("vm.import", name))
        return _json(vm, 201)

    @api.get("/vms/{name}")
    async def get_vm(name: str) -> Response:
        vm = _vm_or_404(state, name)
        return vm if isinstance(vm, JSONResponse) else _json(vm)

    _vm_extra_routes(api, state)  # before the catch-all /vms/{name}/{action}
    new_states = {
        "start": VmState.RUNNING,
        "stop": VmState.SHUTOFF,
        "reboot": VmState.RUNNING,
        "pause": VmState.PAUSED,
        "resume": VmState.RUNNING,
    }

    @api.post("/vms/{name}/{action}")
    async def power(name: str, action: str, request: Request) -> Response:
        vm = _vm_or_404(state, name)
        if isinstance(vm, JSONResponse):
            return vm
        if action in ("shutdown", "clone", "migrate"):
            body = await request.json()
            target = body["name"] if action == "clone" else name
            return _task_response(state.new_task(f"vm.{action}", target))
        if action not in new_states:
            return problem(404, "Not Found")
        state.vms[name] = vm.model_copy(update={"state": new_states[action]})
        return _json(state.vms[name])


def _vm_extra_routes(api: APIRouter, state: CannedState) -> None:
    @api.post("/vms/{name}/disks/{disk}/move")
    async def move_disk(name: str, disk: str) -> Response:
        vm = _vm_or_404(state, name)
        if isinstance(vm, JSONResponse):
            return vm
        return _task_response(state.new_task("vm.disk.move", name))

    @api.get("/vms/{name}/log")
    async def log(
        name: str, tail_bytes: int | None = None, tail_lines: int | None = None
    ) -> Response:
        data = bytes(state.logs.get(name, b""))
        if tail_bytes is not None:
            data = data[-tail_bytes:]
        if tail_lines is not None:
            data = b"".join(data.splitlines(keepends=True)[-tail_lines:])
        return PlainTextResponse(data)


def _image_routes(api: APIRouter, state: CannedState) -> None:
    @api.put("/images/{name}")
    async def upload(
        name: str, request: Request, kind: str | None = None, host: str = "local"
    ) -> Response:
        if "content-length" not in request.headers:
            return problem(411, "send the image with a Content-Length header")
        body = await request.body()
        is_iso = body[ISO_MAGIC_OFFSET : ISO_MAGIC_OFFSET + 5] == b"CD001"
        if kind == "iso" and not is_iso:
            return problem(422, f"{name} is no ISO 9660 or UDF image")
        state.uploads[name] = body
        info = ImageInfo(
            name=name,
            host=host,
            kind=ImageKind.ISO if is_iso else ImageKind.DISK,
            format="raw",
            size_bytes=len(body),
            capacity_bytes=len(body),
            path=f"/pool/_iso.{name}",
        )
        state.images[name] = info
        task = state.new_task("image.upload", f"{host}/{name}")
        done = task.model_copy(update={"state": TaskState.SUCCEEDED, "progress": 1.0})
        return _json(ImageUploaded(image=info, task=done), 201)


def _other_routes(api: APIRouter, state: CannedState) -> None:
    @api.get("/tasks")
    async def tasks(limit: int | None = None) -> Response:
        return _page([answers[-1] for answers in state.task_answers.values()][:limit])

    @api.get("/tasks/{task_id}")
    async def task(task_id: str) -> Response:
        found = state.task(task_id)
        return problem(404, f"no task {task_id}") if found is None else _json(found)

    @api.post("/tasks/{task_id}/cancel")
    async def cancel(task_id: str) -> Response:
        cancelled = state.task_answers[task_id][-1].model_copy(
            update={"state": TaskState.CANCELLED}
        )
        state.task_answers[task_id] = [cancelled]
        return _json(cancelled)

    @api.get("/hosts")
    async def hosts() -> Response:
        return _page(list(state.hosts.values()))

    @api.get("/hosts/legacy-shape")
    async def legacy_host() -> Response:
        return JSONResponse({"name": "legacy-shape"})  # not a HostInfo: no uri, no connected

    @api.get("/hosts/{name}")
    async def host(name: str) -> Response:
        found = state.hosts.get(name)
        return problem(404, f"no host {name}") if found is None else _json(found)

    @api.post("/hosts")
    async def add_host(body: dict[str, Any]) -> Response:
        caps = HostCapabilities(
            hostname=body["name"],
            arch="x86_64",
            cpus=2,
            memory_mib=4096,
            free_memory_mib=2048,
            accelerators=[Accelerator.TCG],
            libvirt_version="9.0.0",
        )
        info = HostInfo(
            name=body["name"],
            uri=body["uri"],
            status="connected",
            connected=True,
            accelerator=body.get("accelerator"),
            capabilities=caps,
        )
        state.hosts[info.name] = info
        return _json(info, 201)

    @api.post("/hosts/{name}/evacuate")
    async def evacuate(name: str) -> Response:
        return _task_response(state.new_task("host.evacuate", name))

    @api.delete("/hosts/{name}")
    async def remove_host(name: str) -> Response:
        if any(vm.host == name for vm in state.vms.values()):
            return problem(409, f"host {name} still has VMs: migrate or delete them first")
        state.hosts.pop(name, None)
        return Response(status_code=204)

    @api.post("/users")
    async def add_user(body: dict[str, Any]) -> Response:
        if not any(ch.isdigit() for ch in body.get("password", "")):
            return problem(422, "password: needs a digit",
                           errors=[{"loc": "password", "msg": "needs a digit"}])  # fmt: skip
        user = UserInfo(name=body["name"], role=body["role"], created_at=NOW)
        state.users[user.name] = user
        return _json(user, 201)


def _power_routes(api: APIRouter, state: CannedState) -> None:
    @api.get("/power/plan")
    async def power_plan() -> Response:
        return JSONResponse(state.power_plan)

    @api.post("/power/apply")
    async def power_apply(request: Request) -> Response:
        body = await request.body()
        plan_id = (await request.json()).get("plan_id") if body else None
        if plan_id == "0" * 32:
            return problem(404, f"plan_id: no plan {plan_id}: get a new one with corral power plan")
        return _task_response(state.new_task("power.apply", plan_id or "cluster"))

    @api.get("/power/status")
    async def power_status() -> Response:
        return JSONResponse(state.power_status)

    @api.post("/hosts/{name}/{switch}")
    async def switch_host(name: str, switch: str) -> Response:
        if switch not in ("power-on", "power-off"):
            return problem(404, "Not Found")
        if switch == "power-off" and any(vm.host == name for vm in state.vms.values()):
            return problem(409, f"host {name} still has VMs: move them away first")
        kind = "host.power_on" if switch == "power-on" else "host.power_off"
        return _task_response(state.new_task(kind, name))


def _serial_route(app: FastAPI, state: CannedState) -> None:
    @app.websocket("/api/v1/vms/{name}/serial")
    async def serial(websocket: WebSocket, name: str) -> None:
        if websocket.headers.get("authorization") != f"Bearer {state.token}":
            await websocket.send_denial_response(problem(401, "Authentication required"))
            return
        if name == "closes-early":
            # Closing before accepting: the server answers a bare 403 without a reason.
            await websocket.close(code=1008, reason="not allowed")
            return
        if name not in state.vms:
            await websocket.send_denial_response(problem(404, f"no VM named {name}"))
            return
        await websocket.accept()
        await websocket.send_bytes(f"serial console of {name}\r\n".encode())
        try:
            while True:
                data = await websocket.receive_bytes()
                state.serial_received += data
                if state.serial_close is not None:
                    await websocket.close(*state.serial_close)
                    return
                # Echo like a terminal would, upper-cased so the test sees the guest answered.
                await websocket.send_bytes(b"guest:" + data.upper())
                await asyncio.sleep(0)
        except WebSocketDisconnect:
            return
