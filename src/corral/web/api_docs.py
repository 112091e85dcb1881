"""``/docs``: Swagger UI served from Corral's own files, never from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.web.assets import vendor_dir

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Corral API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Corral API</title></head>
<body><p>The API explorer's files (npm package swagger-ui-dist) are not installed: run
<code>make setup</code> (or <code>npm ci</code> in Corral's directory). The API document itself
is at <a href="/openapi.json">/openapi.json</a>.</p></body></html>
"""

#: Only Corral's own origin: no inline script, no third-party anything.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


@router.get("/docs")
async def api_docs(request: Request) -> HTMLResponse:
    node_modules: Path = request.app.state.node_modules
    bundle = vendor_dir(node_modules, "swagger-ui") / "swagger-ui-bundle.js"
    page, status = (_PAGE, 200) if bundle.is_file() else (_MISSING, 503)
    return HTMLResponse(page, status_code=status, headers={"Content-Security-Policy": CSP})
