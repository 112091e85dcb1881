"""Typer converts option values with pydantic only when a value needs converting.

Typer 0.29 converts every parameter's value through a pydantic ``TypeAdapter`` built the first
time the parameter is processed, even when the value is ``None`` (an option not given) or a
string for a ``str`` parameter; importing pydantic for that costs about as much as the whole
``corral vm list`` should take. ``install()`` puts a ``DeferredConversion`` in front of Typer's:
``None`` stays ``None`` (Typer's own rule, before any conversion), a ``str`` value of a plain
``str`` parameter is returned as it is (what pydantic's ``str`` validation returns), and any
other value goes to the conversion Typer would have built, built then. Checked by
``tests/unit/cli/test_cli_imports.py`` (pydantic stays out of ``corral vm list --host h1``)
and by every CLI test that passes an integer, a path or a choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer.core
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param


@dataclass(frozen=True)
class DeferredConversion(RuntimeParam):
    """Typer's ``RuntimeParam`` for ``descriptor``, built on the first value that needs it."""

    descriptor: TypeDescriptor | None = None
    _built: list[RuntimeParam] = field(default_factory=list, repr=False, compare=False)

    def _plain_str(self) -> bool:
        info = self.parameter_info
        return self.annotation is str and info.parser is None

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and self._plain_str():
            return value
        if not self._built:
            assert self.descriptor is not None
            self._built.append(build_runtime_param(self.descriptor))
        return self._built[0]._coerce_value(value, param=param, ctx=ctx)


def _deferred(descriptor: TypeDescriptor) -> RuntimeParam:
    return DeferredConversion(
        parameter_info=descriptor.parameter_info,
        annotation=descriptor.annotation,
        descriptor=descriptor,
    )


def install() -> None:
    """Make Typer's parameters convert through ``DeferredConversion`` (idempotent)."""
    typer.core.build_runtime_param = _deferred  # type: ignore[attr-defined]
