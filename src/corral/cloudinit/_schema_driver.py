"""cloud-init's own check of a cloud-config file, as ``cloud-init schema --config-file FILE``
runs it, for ``corral.cloudinit.schema``.

Run by Debian's ``/usr/bin/python3`` (not Corral's interpreter) as
``python3 -I _schema_driver.py ROOT FILE``, where ROOT holds Debian's ``cloud-init`` package
unpacked (``dpkg-deb -x``) and python3-jsonschema, -yaml, -jinja2, -configobj… are installed:
the standard library and cloud-init only, nothing of Corral. It prints one JSON line:
``{"valid": true, "deprecations": TEXT}`` or ``{"valid": false, "message": TEXT}``, TEXT in
cloud-init's words; it exits 3 when the check itself is incomplete.

cloud-init's words are kept but for the values they would quote from the user-data, which may
hold secrets (refusals are audited): jsonschema's messages name a string, a list or a mapping
by its kind (numbers, booleans and null stay), and YAML errors lose their snippet of the text.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import resource
import sys
from collections.abc import Callable, Iterator
from typing import Any

INCOMPLETE = 3
#: Address space for the check: a hostile YAML document fails here, not the machine.
MEMORY_LIMIT = 512 << 20


def main(root: str, path: str) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    sys.path.insert(0, os.path.join(root, "usr", "lib", "python3", "dist-packages"))
    # Without jsonschema cloud-init skips the check and calls everything valid.
    if importlib.util.find_spec("jsonschema") is None:
        return _incomplete("python3-jsonschema is not installed")
    try:
        import yaml
        from cloudinit.config import schema
    except ImportError as exc:
        return _incomplete(f"Debian's python3 cannot import {exc.name}")
    if not os.path.isfile(os.path.join(schema.get_schema_dir(), schema.USERDATA_SCHEMA_FILE)):
        return _incomplete(f"cloud-init's schema file is missing in {root}")
    yaml.Mark.get_snippet = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
    schema.get_jsonschema_validator = _hiding_values(schema.get_jsonschema_validator)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            schema.validate_cloudconfig_file(path, schema.get_schema())
    except schema.SchemaValidationError as exc:
        return _answer({"valid": False, "message": str(exc)})
    except RecursionError:
        return _answer({"valid": False, "message": "the YAML nests too deeply to be checked"})
    except MemoryError:
        return _answer({"valid": False, "message": "the YAML is too large to be checked"})
    except RuntimeError as exc:  # "Cloud-config is not a YAML dict."
        return _answer({"valid": False, "message": str(exc)})
    deprecations = printed.getvalue().strip().removeprefix("Cloud config schema deprecations:")
    return _answer({"valid": True, "deprecations": deprecations.strip()})


def _hiding_values(
    make: Callable[[], tuple[Any, Any]],
) -> Callable[[], tuple[Any, Any]]:
    """cloud-init's validator factory, its errors' messages without the user-data's values."""

    def hiding() -> tuple[Any, Any]:
        validator, checker = make()
        iter_errors = validator.iter_errors

        def quiet(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            for error in iter_errors(self, *args, **kwargs):
                error.message = _without_value(str(error.message), error.instance)
                yield error

        validator.iter_errors = quiet
        return validator, checker

    return hiding


def _without_value(message: str, value: object) -> str:
    if value is None or isinstance(value, bool | int | float):
        return message
    kinds: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string", bytes: "a string"}
    kind = kinds.get(type(value), "a value")
    return message.replace(repr(value), kind)


def _incomplete(reason: str) -> int:
    print(reason, file=sys.stderr)
    return INCOMPLETE


def _answer(verdict: dict[str, object]) -> int:
    print(json.dumps(verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
