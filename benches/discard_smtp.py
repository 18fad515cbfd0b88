#!/usr/bin/python3
"""A discard SMTP sink for benches/send.sh (aiosmtpd): answers 250 to
everything, keeps nothing, listens on 127.0.0.1 only.

Prints `PORT <n>` once ready (on a free port unless --port is given) and
runs until killed. Its own CPU time is in /proc/<pid>/stat, which the bench
reads to show whether the sink, not the client, is the bottleneck.

Needs Debian's python3-aiosmtpd (run it with /usr/bin/python3).
"""

import argparse
import asyncio
import socket
import sys

from aiosmtpd.smtp import SMTP


class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 discarded"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    handler = Discard()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, hostname="sink.localhost", data_size_limit=None),
            sock=sock,
        )
    )
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
