#!/usr/bin/env bash
# Bounce benchmark: `pressroom bounces --maildir` reading N delivery
# status notifications for a ledger with N deliveries, as a relay returns
# them after a big send.
#
# Per size N: a copy of this repository's config.toml and content/ with
# [bounces] address set and [smtp] pointing at the discard sink
# (benches/sink.rs); a subscriber list of N readers; one real
# `pressroom send --include-existing` fills the ledger with N deliveries
# (each with its VERP key). Then N DSN files (RFC 3464, the shape Postfix
# writes, about 1.6 kB each) go into a fresh Maildir's new/, each to its
# reader's VERP address: the tag is the key the ledger stored for the
# delivery plus its HMAC (computed here from the ledger's `tag` column
# and PRESSROOM_SECRET, as email/verp.rs does). Half are hard bounces
# (5.1.1), a quarter soft (4.2.2), a quarter auto-replies.
#
# Measured: `/usr/bin/time -v pressroom bounces --maildir` on the release
# binary, from a cold start: wall time (reports/s = N / wall) and peak RSS.
# The run's own summary is checked (N read, N/2 suppressed) so a figure
# can never come from a run that attributed nothing.
#
# Usage: bash benches/bounces.sh [--sizes 10000,50000] [--work DIR]
#                                [--binary PATH]
set -euo pipefail

sizes=10000,50000
repo=$(cd "$(dirname "$0")/.." && pwd)
work="$repo/target/bench-bounces"
binary=
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) sizes=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
py=/usr/bin/python3
secret=bounce-benchmark-secret-2b9d61c0
mkdir -p "$work"

if [ -z "$binary" ]; then
    echo "building pressroom (release) and the sink…" >&2
    (cd "$repo" && cargo build --release --quiet)
    binary="$repo/target/release/pressroom"
fi
rustc --edition 2021 -O "$repo/benches/sink.rs" -o "$work/sink"

"$work/sink" >"$work/sink.out" 2>"$work/sink.err" &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
    grep -q '^PORT ' "$work/sink.out" 2>/dev/null && break
    sleep 0.1
done
port=$(awk '/^PORT /{ print $2 }' "$work/sink.out")

printf '%-8s %10s %12s %14s %12s\n' size wall_s reports/s peak_RSS_MB suppressed
IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    site="$work/site-$n"
    rm -rf "$site"
    mkdir -p "$site"
    cp "$repo/config.toml" "$site/"
    cp -r "$repo/content" "$site/"
    cat >>"$site/config.toml" <<EOF

[send]
per_second = 0
concurrency = 2

[smtp]
url = "smtp://127.0.0.1:$port?tls=none"

[bounces]
address = "bounces@returns.example.com"
EOF
    "$py" - "$site/subscribers.csv" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("email,name\n")
    for i in range(n):
        f.write(f"reader{i}@bench.example.com,Reader {i}\n")
PY
    PRESSROOM_SECRET=$secret "$binary" --root "$site" --quiet send --include-existing

    box="$site/bounces"
    mkdir -p "$box/new" "$box/cur" "$box/tmp"
    "$py" - "$site/.pressroom/state.db" "$box/new" "$secret" <<'PY'
import base64, hashlib, hmac, sqlite3, struct, sys
db, out, secret = sys.argv[1], sys.argv[2], sys.argv[3].encode()
purpose = b"pressroom-bounce-v1"
rows = sqlite3.connect(db).execute("SELECT tag, recipient, issue_id FROM deliveries ORDER BY recipient")
for i, (key, recipient, issue) in enumerate(rows):
    mac = hmac.new(secret, struct.pack(">Q", len(purpose)) + purpose + struct.pack(">Q", len(key)) + key, hashlib.sha256).digest()[:8]
    tag = base64.b32encode(key + mac).decode().lower().rstrip("=")
    verp = f"bounces+{tag}@returns.example.com"
    if i % 4 == 3:
        body = (f"Delivered-To: {verp}\nFrom: {recipient}\nTo: {verp}\nSubject: Out of office\n"
                f"Message-ID: <ooo-{i}@bench.example.com>\nAuto-Submitted: auto-replied\n\nI am away until Monday.\n")
    else:
        status = "4.2.2" if i % 4 == 2 else "5.1.1"
        action = "delayed" if status.startswith("4") else "failed"
        body = (f"Delivered-To: {verp}\nFrom: Mail Delivery System <MAILER-DAEMON@mx.bench.example.com>\n"
                f"To: {verp}\nSubject: Undelivered Mail Returned to Sender\nMessage-Id: <dsn-{i}@mx.bench.example.com>\n"
                "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
                "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
                "--b\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not\n"
                "be delivered to one or more recipients.\n\n"
                "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.bench.example.com\n\n"
                f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
                f"Action: {action}\nStatus: {status}\n"
                f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown\n\n"
                "--b\nContent-Type: text/rfc822-headers\n\n"
                f"Return-Path: <{verp}>\nFrom: The Pressroom Dispatch <news@dispatch.example.com>\nTo: {recipient}\n"
                f"Subject: The Pressroom Dispatch\nMessage-ID: <bench-{i}@dispatch.example.com>\n\n--b--\n")
    with open(f"{out}/{1796000000 + i}.M{i}P1.bench", "w") as f:
        f.write(body)
PY
    sync
    PRESSROOM_SECRET=$secret /usr/bin/time -v -o "$work/time-$n" \
        "$binary" --root "$site" bounces --maildir "$box" >"$work/out-$n" 2>"$work/err-$n"
    read_n=$(awk '/message\(s\) read/{ print $1 }' "$work/out-$n")
    suppressed=$(awk '/^  suppressed/{ print $2 }' "$work/out-$n")
    if [ "$read_n" != "$n" ] || [ "$suppressed" != "$((n / 2))" ]; then
        echo "size $n: the run read $read_n and suppressed $suppressed (expected $n and $((n / 2))):" >&2
        tail -12 "$work/out-$n" >&2
        exit 1
    fi
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/{ print $2 }' "$work/time-$n" \
        | awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
    rss_kb=$(awk -F': ' '/Maximum resident set size/{ print $2 }' "$work/time-$n")
    awk -v n="$n" -v w="$wall" -v r="$rss_kb" -v s="$suppressed" \
        'BEGIN { printf "%-8d %10.2f %12.0f %14.1f %12d\n", n, w, n / w, r / 1024, s }'
    left=$(find "$box/new" -type f | wc -l)
    [ "$left" -eq 0 ] || { echo "size $n: $left message(s) left in new/" >&2; exit 1; }
done
