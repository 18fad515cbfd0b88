#!/usr/bin/python3
"""Keeps a real headless Chromium open and drives it through the DevTools
protocol, one command at a time, for the live preview tests and benchmark:
the caller changes files between commands and watches the page follow.

usage: live_browser.py
Reads one JSON command a line on stdin and answers one JSON line on stdout:
  {"goto": URL}                      open URL, wait for it to load
  {"eval": JS}                       -> {"value": ...}
  {"wait": JS, "timeout": SECONDS}   poll until JS is truthy -> {"value": ...},
                                     else {"error": ..., "text": page text}
  {"screenshot": PATH, "width": W, "height": H}   full-page PNG
Errors answer {"error": MESSAGE}. Ends at end of input.

Also imported by benches/live_preview.py and tests/tools/browser.py
(start_chromium, Page).
Runs Debian's chromium as the tests run it (root, no sandbox, nothing that
calls home) with a throw-away profile. Needs python3-websocket.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # python3-websocket

TIMEOUT = 20


class Failed(Exception):
    pass


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=TIMEOUT)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == my_id:
                if "error" in message:
                    raise Failed(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, name, deadline):
        while time.time() < deadline:
            for i, event in enumerate(self.events):
                if event.get("method") == name:
                    del self.events[i]
                    return event
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break
        raise Failed(f"timed out waiting for {name}")

    def evaluate(self, expression, await_promise=False):
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            raise Failed(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url):
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired", time.time() + TIMEOUT)

    def text(self):
        return self.evaluate("document.body ? document.body.innerText : ''") or ""


def start_chromium():
    """Starts chromium; returns (process, profile folder, Page)."""
    chromium = shutil.which("chromium")
    if not chromium:
        raise Failed("chromium is not installed: apt-get install chromium")
    profile = tempfile.mkdtemp(prefix="pressroom-chromium-")
    process = subprocess.Popen(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + TIMEOUT
    while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
        if time.time() > deadline or process.poll() is not None:
            stop_chromium(process, profile)
            raise Failed("chromium did not start")
        time.sleep(0.05)
    port = open(port_file).read().split()[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page_target = next(t for t in targets if t.get("type") == "page")
    page = Page(page_target["webSocketDebuggerUrl"])
    page.call("Page.enable")
    page.call("Runtime.enable")
    return process, profile, page


def stop_chromium(process, profile):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(profile, ignore_errors=True)


def answer(page, command):
    if "goto" in command:
        page.goto(command["goto"])
        return {"ok": True}
    if "eval" in command:
        return {"value": page.evaluate(command["eval"])}
    if "wait" in command:
        deadline = time.time() + command.get("timeout", TIMEOUT)
        while True:
            value = page.evaluate(command["wait"])
            if value:
                return {"value": value}
            if time.time() > deadline:
                return {"error": f"never true: {command['wait']}", "text": page.text()}
            time.sleep(0.02)
    if "screenshot" in command:
        page.call("Emulation.setDeviceMetricsOverride", width=command.get("width", 1600),
                  height=command.get("height", 1000), deviceScaleFactor=1, mobile=False)
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        with open(command["screenshot"], "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        return {"ok": True}
    return {"error": f"unknown command {command}"}


def main():
    process, profile, page = start_chromium()
    try:
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                reply = answer(page, json.loads(line))
            except Failed as e:
                reply = {"error": str(e)}
            print(json.dumps(reply), flush=True)
    finally:
        stop_chromium(process, profile)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(e, file=sys.stderr)
        sys.exit(1)
