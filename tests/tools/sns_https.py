#!/usr/bin/python3
"""A stand-in for Amazon SNS's HTTPS endpoints in pressroom's webhook tests.

It serves, over TLS with the given certificate (standard library only):
  GET /<name>.pem          the file <name>.pem from --dir (a signing
                           certificate), 404 when there is none; when the
                           name has `slow` in it, only after 5 seconds (an
                           SNS that does not answer in time)
  GET /?Action=ConfirmSubscription&…
                           the ConfirmSubscriptionResponse SNS gives
and prints one line `GET <path>` on stdout for every request, so a test can
see which URLs the server visited. It listens on 127.0.0.1 on a free port
and prints `PORT <n>` once ready. Runs until killed.

pressroom reaches it only in a debug build, through the tests-only
PRESSROOM_TEST_SNS_ADDR and PRESSROOM_TEST_SNS_CA (src/serve/webhooks/fetch.rs).
"""

import argparse
import http.server
import os
import ssl
import sys
import time
import urllib.parse

CONFIRMED = b"""<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ConfirmSubscriptionResult>
    <SubscriptionArn>arn:aws:sns:us-east-1:123456789012:bounces:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55</SubscriptionArn>
  </ConfirmSubscriptionResult>
</ConfirmSubscriptionResponse>
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            print(f"GET {self.path}", flush=True)
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if query.get("Action") == ["ConfirmSubscription"]:
                return self.answer(200, CONFIRMED, "text/xml")
            name = os.path.basename(url.path)
            path = os.path.join(args.dir, name)
            if "slow" in name:
                time.sleep(5)
            if name.endswith(".pem") and os.path.isfile(path):
                with open(path, "rb") as f:
                    return self.answer(200, f.read(), "application/x-pem-file")
            return self.answer(404, b"not found\n", "text/plain")

        def answer(self, status, body, kind):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
