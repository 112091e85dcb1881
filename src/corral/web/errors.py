"""Errors on web pages: a page for a browser, a short message for htmx (shown by app.js)."""

from __future__ import annotations

import html

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from corral.web.page_auth import LoginRequired, is_htmx, to_login
from corral.web.templating import render


def page_error(request: Request, status: int, title: str, detail: str) -> Response:
    if is_htmx(request):
        return HTMLResponse(html.escape(detail), status_code=status)
    return render(request, "error.html", {"title": title, "detail": detail}, status=status)


def install_page_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return to_login(request, exc)
