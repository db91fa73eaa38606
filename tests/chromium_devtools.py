"""Headless Chromium for the UI tests, driven over the DevTools protocol (no extra packages)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

BODY_TEXT = "document.body ? document.body.innerText : ''"


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, binary: str, profile: str, window_size: tuple[int, int] | None = None) -> None:
        to_chrome, self._send = os.pipe()
        self._recv, from_chrome = os.pipe()

        def wire_pipes():  # runs in the child before exec
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-pipe",
             *([f"--window-size={window_size[0]},{window_size[1]}"] if window_size else []), "about:blank"],
            preexec_fn=wire_pipes, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._id = 0

    def call(self, method: str, session: str | None = None, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._recv, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the DevTools pipe (exit {self.proc.poll()})")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def page(self, url: str, expected: list[str], shot: str, extra_check: str = "true", expression: str = BODY_TEXT) -> str:
        """Open ``url``, wait until every expected text (and ``extra_check``) is there, save a screenshot; return the text."""
        target = self.call("Target.createTarget", url=url)["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        deadline = time.monotonic() + 90
        text, ok = "", False
        while time.monotonic() < deadline and not (ok and all(e in text for e in expected)):
            time.sleep(0.5)
            text = self.call("Runtime.evaluate", session=session, expression=expression, returnByValue=True)["result"].get("value", "")
            ok = self.call("Runtime.evaluate", session=session, expression=extra_check, returnByValue=True)["result"].get("value")
        with open(shot, "wb") as fh:
            fh.write(base64.b64decode(self.call("Page.captureScreenshot", session=session)["data"]))
        self.call("Target.closeTarget", targetId=target)
        return text if ok else ""

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.proc.wait(15)
        except (OSError, RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._send)
            os.close(self._recv)
