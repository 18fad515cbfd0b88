#!/usr/bin/python3
"""The baseline for benches/send.sh: a plain Python smtplib loop sending N
pre-rendered messages over one connection.

  smtplib_loop.py PORT N EML...

The .eml files (written by `pressroom preview --to …`) are read once; message
i is file i mod len(EML) sent to rcpt-i@example.com with the envelope sender
taken from its From header. Prints `sent <n> bytes <total> seconds <s>`.
"""

import email.utils
import smtplib
import sys
import time


def main():
    port, n, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    messages = []
    for path in paths:
        with open(path, "rb") as f:
            messages.append(f.read())
    head = messages[0].split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    sender = next(
        email.utils.parseaddr(line[5:])[1]
        for line in head.split("\r\n")
        if line.lower().startswith("from:")
    )
    total = 0
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(n):
            data = messages[i % len(messages)]
            smtp.sendmail(sender, [f"rcpt-{i}@example.com"], data)
            total += len(data)
    seconds = time.perf_counter() - start
    print(f"sent {n} bytes {total} seconds {seconds:.3f}")


if __name__ == "__main__":
    sys.exit(main())
