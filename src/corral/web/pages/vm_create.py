"""The create-VM form: the same ``VmSpec`` as the API, its messages shown next to the fields."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from corral.errors import CorralError
from corral.http.validation import validation_items
from corral.model.image import ImageKind
from corral.model.task import TaskInfo
from corral.model.vm import VmSpec
from corral.services.runtime import Services
from corral.web.form_numbers import gib_error, mib_error, whole_error
from corral.web.page_auth import PageOperator
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

DEFAULTS: dict[str, Any] = {
    "name": "",
    "host": "",
    "vcpus": "1",
    "memory_mib": "512",
    "accelerator": "",
    "arch": "",
    "machine": "",
    "sockets": "",
    "cores": "",
    "threads": "",
    "nested": False,
    "disk_source": "blank",
    "disk_size_gib": "10",
    "disk_image": "",
    "disk_domain": "local",
    "boot_source": "disk",
    "cdrom": "",
    "cdrom_drive": False,
    "kernel": "",
    "initrd": "",
    "cmdline": "",
    "network": "nat",
    "description": "",
    "start": False,
}


#: The form's number fields, the spec field each becomes (where its error shows), and its rule.
_NUMBERS: dict[str, tuple[str, Callable[[str], str | None]]] = {
    "vcpus": ("vcpus", whole_error),
    "memory_mib": ("memory_mib", mib_error),
    "disk_size_gib": ("disks.0.size_gib", gib_error),
    "sockets": ("cpu.topology.sockets", whole_error),
    "cores": ("cpu.topology.cores", whole_error),
    "threads": ("cpu.topology.threads", whole_error),
}


def _number_errors(form: dict[str, Any]) -> dict[str, str]:
    """The number fields that do not read strictly, by the spec field they become."""
    found: dict[str, str] = {}
    for key, (loc, problem) in _NUMBERS.items():
        if key == "disk_size_gib" and form["disk_source"] != "blank":
            continue
        if (why := problem(str(form[key]))) is not None:
            found[loc] = why
    return found


def _none_if_blank(value: str) -> str | None:
    return value.strip() or None


def spec_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """The form's fields as a ``VmSpec`` document (validation is the model's job)."""
    disks: list[dict[str, Any]] = []
    source = form["disk_source"]
    domain = form["disk_domain"].strip() or "local"
    if source == "blank":
        disks.append({"name": "root", "size_gib": form["disk_size_gib"] or None, "domain": domain})
    elif source == "import":
        disks.append({"name": "root", "import_path": _none_if_blank(form["disk_image"])})
    elif source == "base":
        disks.append(
            {"name": "root", "base_image": _none_if_blank(form["disk_image"]), "domain": domain}
        )
    elif source == "volume":
        disks.append(
            {"name": "root", "volume": _none_if_blank(form["disk_image"]), "domain": domain}
        )
    network = form["network"]
    layout = [form["sockets"], form["cores"], form["threads"]]
    topology = (
        dict(zip(("sockets", "cores", "threads"), [v or "1" for v in layout], strict=True))
        if any(v.strip() for v in layout)
        else None
    )
    return {
        "name": form["name"].strip(),
        "arch": _none_if_blank(form["arch"]),
        "machine": _none_if_blank(form["machine"]),
        "cpu": {"topology": topology, "nested": bool(form["nested"])},
        "vcpus": form["vcpus"] or None,
        "memory_mib": form["memory_mib"] or None,
        "disks": disks,
        "cdrom": _none_if_blank(form["cdrom"]),
        "cdrom_drive": bool(form["cdrom_drive"]),
        "nics": [] if network == "none" else [{"network": network}],
        "boot": {
            "source": form["boot_source"],
            "kernel": _none_if_blank(form["kernel"]),
            "initrd": _none_if_blank(form["initrd"]),
            "cmdline": _none_if_blank(form["cmdline"]),
        },
        "description": form["description"],
        "accelerator": _none_if_blank(form["accelerator"]),
        "host": _none_if_blank(form["host"]),
        "start": bool(form["start"]),
    }


async def _form_context(svc: Services, form: dict[str, Any]) -> dict[str, Any]:
    try:
        images = await svc.images.list_images()
    except CorralError:
        images = []  # the form works without suggestions
    arches: set[str] = set()
    for host in svc.hosts.all():
        if host.connected:
            with contextlib.suppress(CorralError):  # the form works without the list
                arches |= set((await host.capabilities()).architectures)
    return {
        "form": form,
        "hosts": [h.name for h in svc.hosts.all()],
        "arches": sorted(arches),
        "cluster_networks": [n.name for n in await svc.networks.list_networks()],
        "storage_domains": [d.name for d in await svc.storage.list_domains()],
        "errors": {},
        "task": None,
        # Offered as suggestions (any host: the API says when the chosen host lacks one).
        "iso_names": sorted({i.name for i in images if i.kind is ImageKind.ISO}),
        "disk_image_names": sorted({i.name for i in images if i.kind is ImageKind.DISK}),
        "kernel_image_names": sorted({i.name for i in images if i.kind is ImageKind.KERNEL}),
    }


@router.get("/vms/new", name="ui.vm.new")
async def new_vm(request: Request, _: PageOperator) -> HTMLResponse:
    svc: Services = request.app.state.services
    context = await _form_context(svc, dict(DEFAULTS))
    return render(request, "vm_new.html", {"active": "new", **context})


@router.post("/ui/vms", name="ui.vm.create")
async def create_vm(request: Request, who: PageOperator) -> HTMLResponse:
    svc: Services = request.app.state.services
    raw = await request.form()
    form = {key: raw.get(key, default) for key, default in DEFAULTS.items()}
    form = {k: (v if isinstance(v, str | bool) else default) for (k, v), default
            in zip(form.items(), DEFAULTS.values(), strict=True)}  # fmt: skip
    form["start"] = raw.get("start") == "1"
    form["cdrom_drive"] = raw.get("cdrom_drive") == "1"
    form["nested"] = raw.get("nested") == "1"
    context = await _form_context(svc, form)
    request.state.audit_target = form["name"]
    if numbers := _number_errors(form):
        context["errors"] = numbers
        request.state.problem_detail = "; ".join(f"{k}: {v}" for k, v in numbers.items())
        return render(request, "fragments/vm_form.html", context, status=422)
    try:
        spec = VmSpec.model_validate(spec_from_form(form))
        result = await svc.vms.create.create(who, spec)
    except ValidationError as exc:
        context["errors"] = {item["loc"]: item["msg"] for item in validation_items(exc.errors())}
        request.state.problem_detail = "; ".join(context["errors"].values())
        return render(request, "fragments/vm_form.html", context, status=422)
    except CorralError as exc:
        # Shown above the form (a name taken, a host without room…); 422 lets htmx swap it in.
        context["errors"] = {"form": exc.message}
        request.state.problem_detail = exc.message
        return render(request, "fragments/vm_form.html", context, status=422)
    if isinstance(result, TaskInfo):
        context["task"] = result
        return render(request, "fragments/vm_form.html", context)
    response = HTMLResponse("", status_code=200)
    response.headers["HX-Redirect"] = f"/vms/{spec.name}"
    return response
