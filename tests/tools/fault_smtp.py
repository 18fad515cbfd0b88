#!/usr/bin/python3
"""A scriptable SMTP server for pressroom's delivery tests (aiosmtpd).

It fails on cue, which a real MTA will not do:
  --defer ADDR[,ADDR…]   answer RCPT with 451 for these recipients while the
                         file given by --defer-while exists (remove the file
                         and they are accepted)
  --reject ADDR[,…]      answer RCPT with 550 5.1.1 (unknown user)
  --policy ADDR[,…]      answer end of DATA with 554 5.7.1 (content rejected)
  --drop-after N         after N accepted messages, close the connection on
                         the next message's end of DATA without answering or
                         recording it (once)
  --record FILE          append one JSON line per accepted message:
                         {"mail_from", "rcpt_tos", "data"}
  --rcpt-log FILE        append every RCPT TO address, one a line, whatever
                         the answer (to prove an address was never retried)
  --pipelining           advertise PIPELINING (RFC 2920) in the EHLO reply;
                         without it the server offers no PIPELINING, as
                         aiosmtpd does by default
  --pipeline-log FILE    after each end of DATA, wait 20 ms and append one
                         line: `ahead` if the client's next command had
                         already arrived (sent behind the body, before the
                         reply), else `waited`
It listens on 127.0.0.1 on a free port and prints `PORT <n>` on stdout once
ready. Addresses compare case-insensitively. Runs until killed.

Needs Debian's python3-aiosmtpd: run .ci/mail-servers as root to install it.
"""

import argparse
import asyncio
import json
import os
import sys

from aiosmtpd.smtp import SMTP


def address_set(text):
    return {a.strip().lower() for a in (text or "").split(",") if a.strip()}


class Handler:
    def __init__(self, args):
        self.defer = address_set(args.defer)
        self.defer_while = args.defer_while
        self.reject = address_set(args.reject)
        self.policy = address_set(args.policy)
        self.drop_after = args.drop_after
        self.dropped = False
        self.accepted = 0
        self.record = args.record
        self.rcpt_log = args.rcpt_log
        self.pipelining = args.pipelining
        self.pipeline_log = args.pipeline_log

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        a = address.lower()
        if self.rcpt_log:
            with open(self.rcpt_log, "a", encoding="utf-8") as f:
                f.write(a + "\n")
        if a in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if a in self.defer and (self.defer_while is None or os.path.exists(self.defer_while)):
            return f"451 4.3.0 <{address}>: Temporarily unavailable, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.pipeline_log:
            await asyncio.sleep(0.02)
            # What the client wrote after the terminator, before our reply.
            waiting = len(server._reader._buffer) > 0
            with open(self.pipeline_log, "a", encoding="utf-8") as f:
                f.write(("ahead" if waiting else "waited") + "\n")
        if (
            self.drop_after is not None
            and not self.dropped
            and self.accepted >= self.drop_after
        ):
            self.dropped = True
            server.transport.abort()
            return "421 4.4.2 connection dropped by test"  # never arrives
        if any(r.lower() in self.policy for r in envelope.rcpt_tos):
            return "554 5.7.1 Message rejected: looks like spam"
        self.accepted += 1
        if self.record:
            line = json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            )
            with open(self.record, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        return "250 2.0.0 OK: queued"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defer")
    parser.add_argument("--defer-while")
    parser.add_argument("--reject")
    parser.add_argument("--policy")
    parser.add_argument("--drop-after", type=int)
    parser.add_argument("--record")
    parser.add_argument("--rcpt-log")
    parser.add_argument("--pipelining", action="store_true")
    parser.add_argument("--pipeline-log")
    args = parser.parse_args()
    handler = Handler(args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="fault.localhost", ident="fault_smtp"),
        host="127.0.0.1",
        port=0,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
