#!/usr/bin/python3
"""The live preview's change-to-screen latency, for benches/live-preview.sh.

usage: live_preview.py PRESSROOM SITE EDITS

Starts `PRESSROOM --root SITE preview --serve` on a free port, opens its
page in headless Chromium (tests/tools/live_browser.py), and EDITS times
rewrites the title of the newest article shown, each time measuring from
just before the write to the moment the page's DOM holds the new title
(a MutationObserver in the page takes Date.now(); both clocks are this
machine's wall clock). Prints median, p95, min and max, and the server's
own render times from its log.
"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "tools"))
from live_browser import start_chromium, stop_chromium  # noqa: E402

WARMUP = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def main():
    binary, site, edits = sys.argv[1], sys.argv[2], int(sys.argv[3])
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tempfile.NamedTemporaryFile(prefix="live-preview-", suffix=".log", delete=False)
    started = time.time()
    server = subprocess.Popen(
        [binary, "--root", site, "preview", "--serve", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    chromium = None
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.time() - started > 60:
                    sys.exit(f"the server did not start; see {log.name}")
                time.sleep(0.05)
        startup = time.time() - started
        chromium, profile, page = start_chromium()
        page.goto(url)
        first = page.evaluate("document.querySelector('.article-title').textContent")
        number = int(first.rsplit(" ", 1)[1])
        path = next(
            os.path.join(root, name)
            for root, _, names in os.walk(os.path.join(site, "content"))
            for name in names if name == f"post-{number:06d}.md"
        )
        original = open(path, encoding="utf-8").read()
        latencies = []
        for k in range(WARMUP + edits):
            title = f"Live edit {k} {number}"
            page.evaluate(
                "window.seen = new Promise(resolve => {"
                " const check = () => { const l = document.getElementById('live');"
                f"  if (l && l.textContent.includes({json.dumps(title)})) {{ resolve(Date.now()); return true; }}"
                "  return false; };"
                " if (!check()) new MutationObserver((m, o) => { if (check()) o.disconnect(); })"
                "   .observe(document.body, {childList: true, subtree: true}); }); true"
            )
            text = re.sub(r"(?m)^title: .*$", lambda _: f"title: '{title}'", original, count=1)
            before = time.time()
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            seen = page.evaluate("window.seen", await_promise=True)
            if k >= WARMUP:
                latencies.append(seen - before * 1000)
            time.sleep(0.25)
        with open(path, "w", encoding="utf-8") as out:
            out.write(original)
    finally:
        if chromium:
            stop_chromium(chromium, profile)
        server.terminate()
        server.wait(timeout=20)
    renders = [int(m) for m in re.findall(r"rendered \d+ email\(s\) in (\d+) ms", open(log.name).read())]
    os.unlink(log.name)
    articles = sum(len(n) for _, _, n in os.walk(os.path.join(site, "content")))
    print(f"site: {articles} article files; server up and page served in {startup * 1000:.0f} ms")
    print(f"write -> new title in the browser's DOM, {len(latencies)} edits ({WARMUP} warm-up edits not counted):")
    print(f"  median {statistics.median(latencies):.0f} ms   p95 {percentile(latencies, 95):.0f} ms"
          f"   min {min(latencies):.0f} ms   max {max(latencies):.0f} ms")
    if len(renders) > 1:
        edits_only = renders[1 + WARMUP:]
        print(f"  server side (re-read + render, from its log): first load {renders[0]} ms,"
              f" per edit median {statistics.median(edits_only):.0f} ms, max {max(edits_only)} ms"
              " (the watcher's 50 ms debounce comes before it)")


if __name__ == "__main__":
    main()
