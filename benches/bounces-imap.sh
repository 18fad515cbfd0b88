#!/usr/bin/env bash
# IMAP bounce benchmark: `pressroom bounces --imap` reading N delivery
# status notifications from a folder of the test Dovecot (.ci/imap-server,
# 127.0.0.1:10993), to show that memory stays flat as the mailbox grows
# and what the fetch costs per message.
#
# Per size N: a fresh folder gets N DSNs (RFC 3464, about 1.3 kB each,
# each with its own Message-ID) by IMAP APPEND (Python's imaplib); a copy
# of this repository's config.toml and content/ with an empty ledger
# reads them with `--move-to` a second folder (so every message is
# fetched, flagged and moved). The reports name readers the ledger never
# mailed, so they are applied as unattributed: the figures are the IMAP
# source's, not attribution's (benches/bounces.sh measures that).
#
# Measured: `/usr/bin/time -v pressroom bounces --imap …` from a cold
# start: wall time (messages/s = N / wall) and peak RSS. The run's own
# summary is checked (N read) so a figure never comes from a failed run.
#
# Usage: bash benches/bounces-imap.sh [--sizes 1000,8000] [--binary PATH]
# (default binary: target/debug/pressroom, dependencies built at
# opt-level 2; pass target/release/pressroom for release figures)
set -euo pipefail

sizes=1000,8000
repo=$(cd "$(dirname "$0")/.." && pwd)
binary="$repo/target/debug/pressroom"
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) sizes=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$binary" ] || { echo "no binary at $binary: cargo build first" >&2; exit 2; }
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-8s %10s %12s %14s\n' size wall_s messages/s peak_RSS_MB
IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    folder="bench-$n-$$-$(date +%s)"
    "$py" - "$folder" "$n" <<'PY'
import imaplib, ssl, sys
folder, n = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile="/etc/pressroom-imap/imap.crt")
box = imaplib.IMAP4_SSL("127.0.0.1", 10993, ssl_context=ctx)
box.login("bounces@localhost", "imap-test-password")
for name in (folder, folder + "/Done"):
    typ, data = box.create('"%s"' % name)
    assert typ == "OK", data
for i in range(n):
    msg = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: bounces@returns.example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bench-{i}@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        f"Your message could not be delivered to reader{i}@example.org.\r\n"
        + "This is padding so the message has a realistic size.\r\n" * 12 +
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; reader{i}@example.org\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--b--\r\n"
    ).encode()
    typ, data = box.append('"%s"' % folder, None, None, msg)
    assert typ == "OK", data
box.logout()
PY
    site="$work/site-$n"
    mkdir -p "$site"
    cp "$repo/config.toml" "$site/"
    cp -r "$repo/content" "$site/"
    url="imaps://bounces%40localhost@localhost:10993/$folder"
    PRESSROOM_IMAP_PASSWORD=imap-test-password \
        /usr/bin/time -v "$binary" --root "$site" bounces --imap "$url" \
        --imap-ca-file /etc/pressroom-imap/imap.crt --move-to "$folder/Done" \
        >"$work/out-$n" 2>"$work/err-$n" || { cat "$work/out-$n" "$work/err-$n" >&2; exit 1; }
    grep -q "^$n message(s) read from" "$work/out-$n" || { cat "$work/out-$n" >&2; exit 1; }
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/{ print $2 }' "$work/err-$n" \
        | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss_kb=$(awk -F': ' '/Maximum resident set size/{ print $2 }' "$work/err-$n")
    awk -v n="$n" -v w="$wall" -v r="$rss_kb" \
        'BEGIN { printf "%-8d %10.2f %12.0f %14.1f\n", n, w, n / w, r / 1024 }'
    # The folders go again: the test mailbox does not grow run after run.
    "$py" - "$folder" <<'PY'
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile="/etc/pressroom-imap/imap.crt")
box = imaplib.IMAP4_SSL("127.0.0.1", 10993, ssl_context=ctx)
box.login("bounces@localhost", "imap-test-password")
for name in (sys.argv[1] + "/Done", sys.argv[1]):
    box.delete('"%s"' % name)
box.logout()
PY
done
