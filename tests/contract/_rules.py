"""The two request rules JSON Schema cannot state, applied to the fuzzer's schema-valid cases.

Everything else a request must satisfy is in the OpenAPI document. These two are not:

- disk names must be unique within a VM (JSON Schema has no "unique by property");
- a wait-screen template must be a decodable PNG (``contentMediaType: image/png`` is an
  annotation; schemathesis encodes random text instead). Its coverage phase also gives up on
  a base64 string near the 5.6-million-character limit and sends ``0`` as the body while still
  calling the case positive; such a case gets a real template too.

Only positive cases are touched: negative ones are meant to break rules.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image
from schemathesis import Case, GenerationMode


def _positive(case: Case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode is GenerationMode.POSITIVE


def _unique_disk_names(body: dict[str, Any]) -> None:
    disks = body.get("disks")
    if not isinstance(disks, list):
        return
    seen: set[str] = set()
    for index, disk in enumerate(disks):
        if not isinstance(disk, dict):
            continue
        name = str(disk.get("name", "root"))
        suffix = 0
        while name in seen:
            name = f"disk{index}-{suffix}"
            suffix += 1
        if name != disk.get("name", "root"):
            disk["name"] = name
        seen.add(name)


def _png_template(drawn: str) -> str:
    # A small opaque PNG that still varies with what the fuzzer drew.
    side = len(drawn) % 4 + 1
    colour = (len(drawn) * 37 % 256, 80, 160)
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def apply(case: Case) -> Case:
    """``map_case`` hook body: make positive cases satisfy the unstated rules."""
    if not _positive(case):
        return case
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if label == "POST /api/v1/vms" and isinstance(case.body, dict):
        _unique_disk_names(case.body)
    elif label == "POST /api/v1/vms/{name}/console/wait-screen":
        if not isinstance(case.body, dict):
            case.body = {"image_png_base64": ""}
        drawn = case.body.get("image_png_base64")
        if isinstance(drawn, str):
            case.body["image_png_base64"] = _png_template(drawn)
    return case
