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
import sys
import time

# Chromium's start, its DevTools connection and the page commands, shared
# with the live preview's driver.
from live_browser import TIMEOUT, Failed, start_chromium, stop_chromium


def fail(message):
    raise Failed(message)


def main():
    steps = json.loads(sys.argv[1])
    process, profile, page = start_chromium()
    try:
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
        stop_chromium(process, profile)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(e, file=sys.stderr)
        sys.exit(1)
