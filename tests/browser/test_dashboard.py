"""Browser test of the dashboard: `partnerpulse demo` serves it, a headless
Debian Chromium (driven over the DevTools protocol, tests/browser/cdp.py)
opens it, and we assert that the demo's fired alerts for P-APEX
show up in the alert feed, that a transition arrives live over the event
stream, and that the partner page draws its history chart. Screenshots go to
$PP_ARTIFACTS_DIR (ctest: build-*/artifacts/).

Environment: PP_BIN (the binary), PP_ARTIFACTS_DIR (screenshots),
PP_CHROMIUM (optional, default `chromium` on PATH).
"""

from __future__ import annotations

import os
import pathlib
import re
import select
import signal
import subprocess
import time

import pytest

from cdp import Browser

URL_RE = re.compile(r"dashboard at (http://\S+/)")


@pytest.fixture
def demo(tmp_path):
    binary = os.environ.get("PP_BIN")
    if not binary:
        pytest.fail("PP_BIN (path to the partnerpulse binary) is not set", pytrace=False)
    err = open(tmp_path / "demo.stderr.log", "wb")
    # The model demo (MODEL.md's stories from 2024-10-01) at 30 ms per
    # simulated day: Apex's STUFFING_PATTERN fires on 2025-06-28 (day 270,
    # ~8 s) and Meridian's alerts resolve late in November (day ~420, ~13 s),
    # after the page has connected its stream.
    proc = subprocess.Popen([binary, "demo", "--http", "127.0.0.1:0", "--day-ms", "30",
                             "--quiet"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=err)
    url, seen = None, b""
    deadline = time.monotonic() + 30
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            seen += line
            m = URL_RE.search(line.decode(errors="replace"))
            url = m.group(1) if m else None
    if url is None:
        proc.kill()
        pytest.fail(f"the demo printed no dashboard URL; stdout {seen!r}; stderr "
                    f"{(tmp_path / 'demo.stderr.log').read_text(errors='replace')[-3000:]}",
                    pytrace=False)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "killed after 20 s"
    err.close()
    assert rc == 0, (f"the demo exited with {rc} after SIGTERM; stderr "
                     f"{(tmp_path / 'demo.stderr.log').read_text(errors='replace')[-3000:]}")


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


def artifacts() -> pathlib.Path:
    return pathlib.Path(os.environ.get("PP_ARTIFACTS_DIR", "artifacts")).resolve()


def test_dashboard_shows_fired_alert(demo, browser):
    browser.navigate(demo)
    browser.wait_for("document.getElementById('status').dataset.state === 'live'", 20,
                     "the dashboard's event stream to connect")
    firing = ("[...document.querySelectorAll('#feed li')].some(li => "
              "li.dataset.status === 'FIRING' && li.dataset.partner === 'P-APEX')")
    browser.wait_for(firing, 40, "a FIRING alert of P-APEX (the quarter-end stuffer) in the feed")
    # A transition after the page connected can only have come through the
    # stream (the feed marks those `new`): Meridian's RESOLVED, in November.
    live = ("[...document.querySelectorAll('#feed li.new')].some(li => "
            "li.dataset.status === 'RESOLVED' && li.dataset.partner === 'P-MERIDIAN')")
    browser.wait_for(live, 40, "a RESOLVED transition delivered live over /v1/stream")
    text = browser.eval("document.getElementById('feed').innerText")
    assert "STUFFING_PATTERN" in text and "P-APEX" in text, text
    rows = browser.eval("[...document.querySelectorAll('#partners tbody tr')]"
                        ".map(tr => tr.dataset.partner)")
    assert set(rows) >= {"P-APEX", "P-MERIDIAN", "P-NORTHPEAK", "P-ORION"}, rows
    shot = browser.screenshot(artifacts() / "dashboard.png")
    print(f"\ndashboard screenshot: {shot}")
    assert shot.stat().st_size > 10_000

    browser.eval("location.hash = '#/partner/P-APEX'")
    points = browser.wait_for(
        "(() => { const p = document.querySelector('#chart path.line');"
        " return p && p.getAttribute('d').split('L').length; })()", 15,
        "the partner page's history chart")
    assert points >= 30, f"history chart has {points} points, expected one per evaluated day"
    shot = browser.screenshot(artifacts() / "dashboard-partner.png")
    print(f"partner page screenshot: {shot}")
