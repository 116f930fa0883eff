"""Headless Chromium driven through chromedriver's W3C WebDriver HTTP API, with ``requests`` only.

The browser tests need a real browser (the Airflow UI is a React app that embeds the
Predictions pages in an iframe) but not a browser-automation library: WebDriver is JSON
over HTTP. Chromium and chromedriver are the Debian packages ``scripts/bootstrap.sh``
installs; nothing is downloaded at run time (``MissingBrowserError`` says what to install).
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from airflow_provider_somlier.devtools.emulator import free_port
from airflow_provider_somlier.devtools.processes import stop_pid

ELEMENT = "element-6066-11e4-a52f-4a4c6e4d5f28"  # the W3C key of an element reference
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")


class MissingBrowserError(RuntimeError):
    """No Chromium or chromedriver on PATH: run ``scripts/bootstrap.sh`` (it installs both)."""


class BrowserError(RuntimeError):
    """The browser refused a command, or a page never reached the state waited for."""


def find_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or :class:`MissingBrowserError` naming what is missing."""
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = next((path for name in DRIVERS if (path := shutil.which(name))), None)
    if browser is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None)
        raise MissingBrowserError(f"{missing} not found on PATH: run scripts/bootstrap.sh, which installs the Debian "
                                  "packages chromium and chromium-driver")
    return browser, driver


class Browser:
    """One WebDriver session of headless Chromium."""

    def __init__(self, driver_url: str, session_id: str) -> None:
        self.url = f"{driver_url}/session/{session_id}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.url}{path}", json=body, timeout=60)
        value = response.json().get("value")
        if response.status_code != 200:
            message = value.get("message", value) if isinstance(value, dict) else value
            raise BrowserError(f"{method} {path}: {str(message)[:500]}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body; ``arguments`` holds ``args``) in the current frame; return its value."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, *args: Any, timeout: float = 30, what: str = "") -> Any:
        """Poll ``script`` until it returns something truthy; :class:`BrowserError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(BrowserError):
                value = self.run(script, *args)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise BrowserError(f"waited {timeout:.0f} s for {what or script!r} at {self.current_url()}")
            time.sleep(0.25)

    def current_url(self) -> str:
        return self._call("GET", "/url")

    def add_cookie(self, name: str, value: str) -> None:
        """Set a cookie for the current page's site (open a page of that site first)."""
        self._call("POST", "/cookie", {"cookie": {"name": name, "value": value, "path": "/", "httpOnly": True}})

    def find(self, css: str) -> dict[str, str]:
        return self._call("POST", "/element", {"using": "css selector", "value": css})

    def enter_frame(self, css: str) -> None:
        """Make the iframe matching ``css`` the frame later commands run in."""
        self._call("POST", "/frame", {"id": self.find(css)})

    def leave_frames(self) -> None:
        self._call("POST", "/frame", {"id": None})

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path


@contextlib.contextmanager
def headless_chromium(log: Path, *, width: int = 1440, height: int = 1000) -> Iterator[Browser]:
    """Start chromedriver on a free loopback port and one headless Chromium session; stop both after."""
    browser_path, driver_path = find_browser()
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([driver_path, f"--port={port}", "--allowed-ips=127.0.0.1"],
                               stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
    driver_url = f"http://127.0.0.1:{port}"
    session_id = None
    try:
        for _ in range(200):
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{driver_url}/status", timeout=1).json()["value"]["ready"]:
                    break
            if process.poll() is not None:
                raise BrowserError(f"chromedriver exited with code {process.returncode}; see {log}")
            time.sleep(0.05)
        options = {"binary": browser_path, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--window-size={width},{height}", "--disable-extensions", "--disable-background-networking",
        ]}
        created = requests.post(f"{driver_url}/session", json={"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}}, timeout=60).json()["value"]
        if "sessionId" not in created:
            raise BrowserError(f"chromedriver could not start Chromium: {str(created)[:500]}")
        session_id = created["sessionId"]
        yield Browser(driver_url, session_id)
    finally:
        if session_id is not None:
            with contextlib.suppress(requests.RequestException):
                requests.delete(f"{driver_url}/session/{session_id}", timeout=10)
        stop_pid(process.pid, timeout=5)
