#!/usr/bin/python3
"""Writes N distinct one-click unsubscribe paths, one a line, for
benches/serve.sh: `/unsubscribe?token=…` for reader{i}@bench.example.com,
signed exactly as pressroom signs them (src/email/token.rs: HMAC-SHA256
over length-prefixed purpose, list id and address; base64url, unpadded).

usage: serve_tokens.py SECRET LIST_ID N OUT
"""

import base64
import hashlib
import hmac
import struct
import sys


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, list_id, address):
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    for part in (b"pressroom-unsubscribe-v1", list_id, address):
        mac.update(struct.pack(">Q", len(part)))
        mac.update(part)
    return f"{b64(address)}.{b64(mac.digest())}"


def main():
    secret, list_id, n, out = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
    with open(out, "w") as f:
        for i in range(n):
            f.write(f"/unsubscribe?token={token(secret, list_id, f'reader{i}@bench.example.com'.encode())}\n")


if __name__ == "__main__":
    main()
