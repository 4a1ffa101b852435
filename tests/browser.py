"""A headless Chromium for tests, driven over the DevTools protocol on a pipe.

No driver and no extra Python package: Chromium's ``--remote-debugging-pipe``
reads protocol commands from file descriptor 3 and writes replies and events to
descriptor 4, each a JSON object ended by a NUL byte.  :func:`render` loads one
page and returns what a person would have seen go wrong: uncaught exceptions,
``console.error``/``console.assert`` calls, browser log entries of level error
(blocked loads, Content-Security-Policy violations), and every request that
left ``file:``/``data:``, with what the page's own script reports afterwards.

Chromium comes from the distribution (Debian's ``chromium``); :func:`find_chromium`
returns None where there is none, and tests skip with that reason.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = [  # the machine notes' set: no sandbox (root), no network of its own
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Rendered:
    """What loading the page produced."""

    errors: list[str] = field(default_factory=list)  # exceptions, console errors, log errors
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    values: list[Any] = field(default_factory=list)  # each expression's value, in order
    screenshot: bytes | None = None


class Chromium:
    """One headless browser with a fresh profile; a context manager."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="zsmalloc-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # in the child: our pipe ends become its fds 3 and 4
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=wire_fds,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            data = os.read(self._from_browser, 1 << 16)
            if not data:
                raise RuntimeError(f"Chromium exited (status {self.proc.poll()})")
            self._buf += data
        raw, self._buf = self._buf.split(b"\0", 1)
        msg: dict[str, Any] = json.loads(raw)
        return msg

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        """One protocol command; returns its result, keeping events that arrive meanwhile."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, seconds: float) -> None:
        """Collect events until ``method`` arrives (or ``seconds`` pass: TimeoutError)."""
        deadline = time.monotonic() + seconds
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_message(deadline))

    def drain(self, seconds: float) -> None:
        """Collect the events of the next ``seconds`` (late console messages)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except TimeoutError:
            pass


def render(
    page: Path,
    expressions: list[str],
    *,
    executable: str,
    screenshot: bool = False,
    width: int = 1280,
) -> Rendered:
    """Load ``page`` and evaluate ``expressions`` once it has loaded."""
    out = Rendered()
    with Chromium(executable) as br:
        target = br.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = br.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            br.send(f"{domain}.enable", session=session)
        br.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        br.events.clear()  # about:blank's own events
        br.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        br.wait_for("Page.loadEventFired", br.timeout)
        br.drain(0.5)
        for expr in expressions:
            res = br.send(
                "Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session
            )
            if "exceptionDetails" in res:
                out.errors.append(f"evaluating {expr!r}: {res['exceptionDetails']}")
            out.values.append(res.get("result", {}).get("value"))
        if screenshot:
            shot = br.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session=session,
            )
            out.screenshot = base64.b64decode(shot["data"])
        for e in br.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.errors.append(f"exception: {p['exceptionDetails']}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                args = [a.get("value", a.get("description")) for a in p.get("args", [])]
                out.errors.append(f"console.{p['type']}: {args}")
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
            elif m == "Network.loadingFailed":
                out.errors.append(f"load failed: {p.get('errorText')}")
    return out
