"""The Power page: the plan and the mode for every role, the utilisation and watts charts
drawn server-side as SVG from stored samples (the page's CSP allows no inline script)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from corral import store
from corral.model.power import HostSample
from corral.store.coltypes import utcnow
from tests.unit.web.conftest import Api, log_in


def test_the_power_page_plots_the_samples_for_a_viewer(api: Api, browser: TestClient) -> None:
    now = utcnow()
    samples = [
        HostSample(host="test", at=now - timedelta(minutes=m), cpu=cpu, memory_used_mib=512,
                   memory_total_mib=8192)
        for m, cpu in ((40, 0.1), (20, 0.5), (1, 0.25))
    ]  # fmt: skip
    api.services.db.sync(lambda s: store.add_samples(s, samples, []))
    log_in(browser, "viewer")
    page = browser.get("/power")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-testid="power-mode">manual' in html
    assert 'data-testid="plan-empty"' in html
    assert "CPU utilisation per host (%)" in html and "Estimated power of the cluster (W)" in html
    lines = re.findall(r'<polyline points="([^"]+)"', html)
    assert len(lines) == 2  # the host's utilisation and the cluster's watts
    assert len(lines[0].split()) == 3
    assert "test: 25 %" in html  # the newest value in the legend
    # The fragment the live refresh fetches has the same content.
    fragment = browser.get("/ui/fragments/power", params={"hours": 6})
    assert fragment.status_code == 200 and "CPU utilisation per host" in fragment.text
