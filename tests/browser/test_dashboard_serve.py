"""The whole story of issue 13 against a real `smmkit serve` (default: two gunicorn workers):
open the printed dashboard URL, sign in with the printed token, drive an order to its end from
the browser, while the console logs every API request."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright
from smmkit.mock_server.core.config import DEMO_KEY
from smmkit.mock_server.storage.journal import key_print
from support import read_line, start_serve, wait_ready

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def test_a_new_user_drives_an_order_from_the_printed_dashboard_url(tmp_path):
    proc = start_serve("--port", "0", "--db", str(tmp_path / "panel.db"), "--log")
    banner = [proc.first_line]
    while not banner[-1].startswith("Press Ctrl-C"):
        banner.append(read_line(proc.proc.stdout, 10))
        assert banner[-1], banner
    text = "".join(banner)
    dashboard = re.search(r"dashboard: (http://\S+/_dashboard/)", text).group(1)
    token = re.search(r"Authorization: Bearer (\S+)\)", text).group(1)
    console: list[str] = []
    reader = threading.Thread(target=lambda: console.extend(
        raw.decode() for raw in proc.proc.stdout), daemon=True)
    reader.start()
    try:
        wait_ready(proc.url)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(dashboard)
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            page.click("button:has-text('Freeze')")
            page.goto(dashboard + "orders")
            answer = requests.post(proc.url, timeout=10, data={
                "key": DEMO_KEY, "action": "add", "service": "1", "link": "https://x.test/a",
                "quantity": "500"}).json()
            order = answer["order"]
            page.click(f"tr[data-order='{order}'] a")  # it appeared without a reload
            page.click("button[data-move='In progress']")
            expect(page.locator("h2 .badge")).to_have_text("In progress")
            page.click("button[data-outcome='normal']")
            page.goto(dashboard)
            page.click("button:has-text('+3d')")
            page.goto(f"{dashboard}orders/{order}")
            expect(page.locator("h2 .badge")).to_have_text("Completed")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "13-serve-completed.png"), full_page=True)
            browser.close()
        status = requests.post(proc.url, timeout=10, data={
            "key": DEMO_KEY, "action": "status", "order": str(order)}).json()
        assert status["status"] == "Completed"
    finally:
        proc.stop()
    reader.join(timeout=10)  # the last lines may still be in the pipe when serve has ended
    lines = [ln for ln in console if key_print(DEMO_KEY) in ln]
    assert any(f"→ 200 order {order}" in ln for ln in lines), console
    assert any("→ 200 Completed, remains 0" in ln for ln in lines), console
    assert DEMO_KEY not in "".join(lines)
