"""``/docs`` works offline: every file it needs comes from Corral itself, none from a CDN."""

from __future__ import annotations

import re

from tests.unit.api.conftest import Api

_REFERENCE = re.compile(r'(?:src|href)="([^"]+)"')


def test_docs_page_references_only_local_files(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["default-src"] == "'self'"
    assert "<script>" not in page.text  # no inline script
    references = _REFERENCE.findall(page.text)
    assert len(references) == 4
    for ref in references:
        assert ref.startswith("/"), f"{ref} is not served by Corral"
        got = api.client.get(ref)
        assert got.status_code == 200, ref
    init = api.client.get("/static/api-docs.js").text
    assert "validatorUrl: null" in init and "http" not in init


def test_redoc_and_other_cdn_pages_are_gone(api: Api) -> None:
    assert api.client.get("/redoc").status_code == 404
    assert api.client.get("/vendor/swagger-ui/../../package.json").status_code == 404


def test_only_the_listed_packages_are_served(api: Api) -> None:
    assert api.client.get("/vendor/htmx/htmx.min.js").status_code == 200
    assert api.client.get("/vendor/lodash/index.js").status_code == 404
