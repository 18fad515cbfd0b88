#!/usr/bin/env bash
# Resource bounds (issue 5): peak memory of
#   (a) `pressroom check` on a 1,000,000-row subscribers.csv (1% bad
#       addresses, 0.5% repeats, so more problems than the 10,000 kept), and
#   (b) `pressroom send` to 100,000 recipients against a local discard SMTP
#       server (benches/sink.rs: 250 to everything, keeps nothing,
#       127.0.0.1 only), with [send] per_second = 0 and
#       concurrency 1 and 4.
# Prints peak RSS (/usr/bin/time %M), wall time and, for sends, messages
# per second. Figures only: nothing here asserts a limit.
#
# Usage: bash benches/bounds.sh [--rows N] [--recipients N]
#                               [--concurrency 1,4] [--only check|send]
#                               [--work DIR]
# Needs: a release build and the sink (made here), /usr/bin/time.
set -euo pipefail

ROWS=1000000
RECIPIENTS=100000
CONCURRENCY=1,4
ONLY=
WORK=
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --recipients) RECIPIENTS=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$REPO/Cargo.toml"
BIN="$REPO/target/release/pressroom"
NOW=2026-11-29T12:00:00Z
export PRESSROOM_SECRET=bounds-benchmark-secret-0123456789
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /tmp/pressroom-bounds-XXXXXX)
    REMOVE_WORK=$WORK
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"

# A copy of the corpus base site (config.toml, one article) with $1 rows.
make_site() {
    local dir=$1 rows=$2
    rm -rf "$dir"
    cp -r "$REPO/tests/corpus/_base" "$dir"
    awk -v n="$rows" 'BEGIN {
        print "email,name,plan"
        for (i = 1; i <= n; i++) {
            if (i % 100 == 0)      printf "not-an-address-%d,Bad %d,free\n", i, i
            else if (i % 200 == 1 && i > 1) printf "R%d@Bounds.Example.org,Again %d,free\n", i - 100, i
            else                   printf "r%d@bounds.example.org,Reader %d,pro\n", i, i
        }
    }' > "$dir/subscribers.csv"
}

# `/usr/bin/time` around one run (its output redirected by the caller);
# the peak RSS in KB and wall seconds land in $WORK/time.txt.
measure() {
    /usr/bin/time -f '%M %e' -o "$WORK/time.txt" "$@"
}

if [ "$ONLY" != send ]; then
    make_site "$WORK/check" "$ROWS"
    size=$(du -m "$WORK/check/subscribers.csv" | cut -f1)
    echo "== (a) check, $ROWS rows ($size MB subscribers.csv)"
    echo "\$ /usr/bin/time -f '%M KB %e s' $BIN --root SITE --now $NOW check"
    measure "$BIN" --root "$WORK/check" --now "$NOW" check 2> "$WORK/check.err" > /dev/null || true
    read -r kb s < "$WORK/time.txt"
    echo "   $(wc -l < "$WORK/check.err") stderr lines; $(grep -c '^warning' "$WORK/check.err") warnings; others: $(grep -v '^warning' "$WORK/check.err" | tr '\n' '|')"
    grep 'more problem' "$WORK/check.err" | sed 's/^/   /' || true
    printf '   peak RSS %d KB (%.1f MB), wall %s s\n' "$kb" "$(echo "$kb / 1024" | bc -l)" "$s"
fi

if [ "$ONLY" != check ]; then
    rustc --edition 2021 -O "$REPO/benches/sink.rs" -o "$WORK/sink"
    coproc DISCARD { exec "$WORK/sink" 2>/dev/null; }
    read -r _ port <&"${DISCARD[0]}"
    trap 'kill $DISCARD_PID 2>/dev/null || true; [ -z "${REMOVE_WORK:-}" ] || rm -rf "$REMOVE_WORK"' EXIT
    for c in ${CONCURRENCY//,/ }; do
        site="$WORK/send-$c"
        make_site "$site" "$RECIPIENTS"
        cat >> "$site/config.toml" <<CONF
per_second = 0.0
concurrency = $c

[smtp]
allow_plaintext = true
CONF
        good=$(awk -F, 'NR > 1 && $1 ~ /@/ && $2 !~ /^Again/' "$site/subscribers.csv" | wc -l)
        echo "== (b) send, $RECIPIENTS rows ($good deliverable), concurrency $c, discard server on 127.0.0.1:$port"
        echo "\$ PRESSROOM_SMTP_URL='smtp://127.0.0.1:$port?tls=none' /usr/bin/time -f '%M KB %e s' $BIN --root SITE --now $NOW send --include-existing"
        PRESSROOM_SMTP_URL="smtp://127.0.0.1:$port?tls=none" \
            measure "$BIN" --root "$site" --now "$NOW" -q send --include-existing 2> "$WORK/send.err" > /dev/null || true
        read -r kb s < "$WORK/time.txt"
        sent=$("$BIN" --root "$site" --now "$NOW" status --json | python3 -c 'import json,sys; print(sum(i["counts"]["sent"] for i in json.load(sys.stdin)))')
        printf '   sent %s, peak RSS %d KB (%.1f MB), wall %s s, %.0f messages/s\n' \
            "$sent" "$kb" "$(echo "$kb / 1024" | bc -l)" "$s" "$(echo "$sent / $s" | bc -l)"
        { grep -v '^warning' "$WORK/send.err" || true; } | tail -3 | sed 's/^/   stderr: /'
        rm -rf "$site"
    done
fi
