"""The page of ``genreclf serve`` in a real headless Chromium (DevTools protocol).

The browser is driven over its DevTools websocket (with aiohttp's client, which
MLflow's dependencies install): open the page, give the file input a
generated clip (``DOM.setFileInputFiles``, as a person choosing a file), wait
for the bars, and compare the genres shown with the model's ``predict``.
Skips with the reason when Chromium is absent (Debian: ``apt-get install
chromium``).
"""

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import time
import urllib.request

import joblib
import numpy as np
import pytest
from conftest import TINY_OPTIONS, free_port, start_server, stop_server

from genreclf.pipeline import build_pipeline

aiohttp = pytest.importorskip("aiohttp")
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


@pytest.fixture(scope="module")
def browser_path():
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no headless browser found ({', '.join(BROWSERS)}): apt-get install chromium")


@pytest.fixture(scope="module")
def served(tiny_demo, tmp_path_factory):
    """A tiny fitted pipeline served by ``genreclf serve``: (base URL, pipeline)."""
    _, paths, y = tiny_demo
    folder = tmp_path_factory.mktemp("page")
    pipeline = build_pipeline(
        memory=str(folder / "cache"), random_state=0, n_members=1, **TINY_OPTIONS
    ).fit(np.asarray(paths, dtype=object), np.asarray(y))
    model = folder / "model.joblib"
    joblib.dump(pipeline, model)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "genreclf", "serve", str(model), "--port", str(port)]
    proc = start_server(command, f"{base}/ping", str(folder))
    yield base, pipeline, paths
    stop_server(proc)


class DevTools:
    """A minimal DevTools protocol client: send a command, get its result."""

    def __init__(self, socket):
        self.socket, self.next_id = socket, 0

    async def __call__(self, method, **params):
        self.next_id += 1
        await self.socket.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads((await self.socket.receive()).data)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def evaluate(self, expression):
        result = await self("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expression}")


def _debugger_url(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                pages = [t for t in json.loads(r.read()) if t["type"] == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("Chromium's DevTools endpoint did not answer")


async def _drive(ws_url, page_url, clip, screenshot):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as socket:
            cdp = DevTools(socket)
            await cdp("Page.enable")
            await cdp("Runtime.enable")
            await cdp("Page.navigate", url=page_url)
            await cdp.wait_for("document.body && document.body.dataset.ready === 'true'")
            root = await cdp("DOM.getDocument")
            node = await cdp("DOM.querySelector", nodeId=root["root"]["nodeId"], selector="#files")
            await cdp("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[clip])
            state = await cdp.wait_for(
                "(document.querySelector('.result') || {dataset: {}}).dataset.state"
                " !== 'busy' && document.querySelector('.result').dataset.state"
            )
            shown = await cdp.evaluate(
                "JSON.stringify({state: document.querySelector('.result').dataset.state,"
                " genre: document.querySelector('.result').dataset.genre,"
                " status: document.querySelector('.result .status').textContent,"
                " bars: [...document.querySelectorAll('.result .bar')].map(b => b.dataset.genre),"
                " widths: [...document.querySelectorAll('.result .bar .fill')].map(f => f.style.width),"
                " strip: [...document.querySelectorAll('.result .strip .seg')].map(s => s.dataset.genre)})"
            )
            shot = await cdp("Page.captureScreenshot", format="png")
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            assert state in ("done", "error")
            return json.loads(shown)


def test_page_shows_the_genre_of_an_uploaded_clip(browser_path, served, tmp_path):
    base, pipeline, paths = served
    clip = paths[1]
    port = free_port()
    browser = subprocess.Popen(
        [
            browser_path, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", f"--remote-debugging-port={port}",
            "--remote-debugging-address=127.0.0.1", f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,900", "about:blank",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    screenshot = tmp_path / "page.png"
    try:
        shown = asyncio.run(_drive(_debugger_url(port), f"{base}/", clip, screenshot))
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=20)
        except subprocess.TimeoutExpired:
            browser.kill()
    assert shown["state"] == "done", shown["status"]
    proba = pipeline.predict_proba(np.asarray([clip], dtype=object))[0]
    order = np.argsort(-proba, kind="stable")
    expected = [str(pipeline.classes_[j]) for j in order[:3]]
    assert shown["genre"] == str(pipeline.predict(np.asarray([clip], dtype=object))[0])
    assert shown["status"] == shown["genre"] == expected[0]
    assert shown["bars"] == expected
    assert len(shown["widths"]) == 3 and all(w.endswith("%") for w in shown["widths"])
    assert shown["strip"] and set(shown["strip"]) <= set(pipeline.classes_)
    assert screenshot.stat().st_size > 1000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
