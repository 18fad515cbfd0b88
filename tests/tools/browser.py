#!/usr/bin/python3
"""Drives a real headless Chromium through the DevTools protocol, for
pressroom's serve tests: opens a page, types into fields, clicks, and
waits for text, the way a reader's browser does.

usage: browser.py STEPS_JSON
STEPS_JSON is a list of steps, each one of
  {"goto": URL}                  open URL and wait for it to load
  {"type": [SELECTOR, TEXT]}     focus the field and type TEXT (key events)
  {"click": SELECTOR}            click the element (a real mouse click at its
                                 centre) and wait for the next page to load
  {"wait_text": TEXT}            wait until the page's text contains TEXT
Prints the last page's URL and text as JSON on stdout. Exit status 1 with
a message on any failure.

Runs Debian's chromium as the tests run it (root, no sandbox, nothing that
calls home) with a throw-away profile. Needs python3-websocket.
"""

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


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


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
                    fail(f"{method}: {message['error']}")
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
        fail(f"timed out waiting for {name}; saw {[e.get('method') for e in self.events]}")

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            fail(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self):
        return self.evaluate("document.body ? document.body.innerText : ''") or ""


def main():
    steps = json.loads(sys.argv[1])
    chromium = shutil.which("chromium")
    if not chromium:
        fail("chromium is not installed: apt-get install chromium")
    profile = tempfile.mkdtemp(prefix="pressroom-chromium-")
    process = subprocess.Popen(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + TIMEOUT
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.time() > deadline or process.poll() is not None:
                fail("chromium did not start")
            time.sleep(0.05)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page_target = next(t for t in targets if t.get("type") == "page")
        page = Page(page_target["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        for step in steps:
            deadline = time.time() + TIMEOUT
            if "goto" in step:
                page.events.clear()
                page.call("Page.navigate", url=step["goto"])
                page.wait_event("Page.loadEventFired", deadline)
            elif "type" in step:
                selector, text = step["type"]
                found = page.evaluate(
                    f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                    " if (!e) return false; e.focus(); return true; })()"
                )
                if not found:
                    fail(f"no element {selector}")
                for ch in text:
                    page.call("Input.dispatchKeyEvent", type="keyDown", text=ch)
                    page.call("Input.dispatchKeyEvent", type="keyUp", text=ch)
            elif "click" in step:
                box = page.evaluate(
                    f"(() => {{ const e = document.querySelector({json.dumps(step['click'])});"
                    " if (!e) return null; e.scrollIntoView({block: 'center'});"
                    " const r = e.getBoundingClientRect();"
                    " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
                )
                if not box:
                    fail(f"no element {step['click']}")
                page.events.clear()
                for kind in ("mousePressed", "mouseReleased"):
                    page.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                              button="left", clickCount=1)
                page.wait_event("Page.loadEventFired", deadline)
            elif "wait_text" in step:
                while step["wait_text"] not in page.text():
                    if time.time() > deadline:
                        fail(f"the page never said {step['wait_text']!r}; it says:\n{page.text()}")
                    time.sleep(0.05)
            else:
                fail(f"unknown step {step}")
        url = page.evaluate("location.href")
        print(json.dumps({"url": url, "text": page.text()}))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
