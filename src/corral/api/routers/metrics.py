"""``/metrics``: Prometheus' text format, at the root (Prometheus' default path), not under
/api/v1. It renders what ``services.metrics_refresh`` keeps current: a scrape calls no host."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from corral.api.deps import MetricsReader
from corral.metrics import REGISTRY

router = APIRouter(tags=["meta"])


@router.get(
    "/metrics",
    name="metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(_: MetricsReader) -> PlainTextResponse:
    """Needs a token (any role) unless the setting ``metrics_public`` is true; values are at
    most ``metrics_interval_s`` old."""
    return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
