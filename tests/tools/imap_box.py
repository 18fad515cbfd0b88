#!/usr/bin/python3
"""Puts mail into the test Dovecot and reads its state back, with Python's
own IMAP client (imaplib), so the tests of pressroom's IMAP client check
the server's state through a client that is not the one under test.

  imap_box.py create FOLDER…        create folders (an existing one is kept)
  imap_box.py append FOLDER FILE…   APPEND each file's bytes as they are;
                                    prints one UID a line (APPENDUID)
  imap_box.py store FOLDER UID FLAG  add FLAG (e.g. \\Deleted) to one message
  imap_box.py state FOLDER          prints JSON: [{"uid", "flags", "bytes"}]
                                    in UID order, "bytes" as Latin-1 text
                                    (read with BODY.PEEK[]: marks nothing)

The server is the one .ci/imap-server starts: 127.0.0.1:10993 (TLS),
user bounces@localhost, its certificate /etc/pressroom-imap/imap.crt.
"""

import imaplib
import json
import re
import ssl
import sys

HOST = "127.0.0.1"
PORT = 10993
USER = "bounces@localhost"
PASSWORD = "imap-test-password"
CA = "/etc/pressroom-imap/imap.crt"


def connect():
    context = ssl.create_default_context(cafile=CA)
    box = imaplib.IMAP4_SSL(HOST, PORT, ssl_context=context)
    box.login(USER, PASSWORD)
    return box


def quoted(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check(result, what):
    typ, data = result
    if typ != "OK":
        sys.exit(f"imap_box: {what}: {typ} {data!r}")
    return data


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    command, folder, rest = argv[0], argv[1], argv[2:]
    box = connect()
    if command == "create":
        for name in [folder] + rest:
            typ, data = box.create(quoted(name))
            if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(data):
                sys.exit(f"imap_box: CREATE {name}: {typ} {data!r}")
    elif command == "append":
        for path in rest:
            with open(path, "rb") as f:
                message = f.read()
            data = check(box.append(quoted(folder), None, None, message), f"APPEND {path}")
            found = re.search(rb"APPENDUID \d+ (\d+)", b" ".join(data))
            if not found:
                sys.exit(f"imap_box: APPEND gave no APPENDUID: {data!r}")
            print(found.group(1).decode())
    elif command == "store":
        uid, flag = rest
        check(box.select(quoted(folder)), f"SELECT {folder}")
        check(box.uid("STORE", uid, "+FLAGS.SILENT", f"({flag})"), "UID STORE")
    elif command == "state":
        check(box.select(quoted(folder), readonly=True), f"SELECT {folder}")
        data = check(box.uid("SEARCH", None, "ALL"), "UID SEARCH")
        uids = [int(u) for u in b" ".join(data).split()]
        out = []
        for uid in sorted(uids):
            data = check(box.uid("FETCH", str(uid), "(UID FLAGS BODY.PEEK[])"), "UID FETCH")
            head, body = data[0]
            flags = re.search(rb"FLAGS \(([^)]*)\)", head + b" ".join(
                d for d in data[1:] if isinstance(d, bytes)))
            out.append({
                "uid": uid,
                # \Recent belongs to the session that saw the message first.
                "flags": sorted(f for f in flags.group(1).decode().split()
                                if f != "\\Recent") if flags else [],
                "bytes": body.decode("latin-1"),
            })
        print(json.dumps(out))
    else:
        sys.exit(__doc__)
    box.logout()


if __name__ == "__main__":
    main(sys.argv[1:])
