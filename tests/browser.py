"""Open a page in headless Debian Chromium (through chromedriver) and report what a reader would get."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# flags that keep Chromium from reaching out to Google's services on a closed network
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--window-size=1200,900",
]

PAGE_STATE = """
const imgs = Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);
const maths = Array.from(document.querySelectorAll('math'));
const unrendered = maths.filter(m => {
  const r = m.getBoundingClientRect();
  return r.width === 0 || r.height === 0 || m.querySelector('merror') !== null;
}).length;
return {images: imgs, equations: maths.length, unrendered_equations: unrendered};
"""


def inspect_page(html: Path, screenshot: Path) -> dict:
    """Load `html` from file://, wait for it, and return images, equations, errors and requests."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            raise RuntimeError("Chromium and chromedriver are required in CI: apt-get install chromium chromium-driver")
        pytest.skip("Debian chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        driver.get("about:blank")
        driver.get_log("performance")  # drop the start-up tab's own chrome:// traffic
        driver.get(html.resolve().as_uri())
        deadline = time.time() + 30
        while time.time() < deadline:
            if driver.execute_script("return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"):
                break
            time.sleep(0.2)
        state = driver.execute_script(PAGE_STATE)
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics["cssContentSize"]
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
        )
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return {**state, "errors": errors, "requests": requests}
