#!/usr/bin/env bash
# Serve benchmark: `pressroom serve` (release build) on 127.0.0.1, loaded
# with wrk (Debian's `wrk`):
#   1. one-click unsubscribes: the RFC 8058 POST, every request with a
#      token of its own (benches/serve_tokens.py signs them as pressroom
#      does; benches/serve_unsubscribe.lua sends them). Each is committed
#      to the ledger before its 200; afterwards the ledger's rows are
#      counted and must equal the 200s.
#   2. GET /unsubscribe?token=… (token checked, page rendered) and
#   3. GET /subscribe (the signup page).
# Then the server's peak memory (VmHWM) is read from /proc.
#
# The site is a copy of this repository's config.toml with [smtp] set to
# 127.0.0.1 (nothing is mailed: no signups are made). The ledger is on
# the disk under --work, synchronous=FULL as always.
#
# Usage: bash benches/serve.sh [--duration 10] [--connections 32]
#                              [--post-connections N] [--threads 2]
#                              [--work DIR]
#   --post-connections  connections for the POST load (default: --connections)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
connections=32
post_connections=""
threads=2
work=target/bench-serve
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --post-connections) post_connections="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
post_connections="${post_connections:-$connections}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }

cargo build --release --quiet
bin="$PWD/target/release/pressroom"
rm -rf "$work"
mkdir -p "$work"
cp config.toml "$work/"
printf '\n[smtp]\nurl = "smtp://127.0.0.1:2525?tls=none"\n' >> "$work/config.toml"
printf 'email,name\n' > "$work/subscribers.csv"
export PRESSROOM_SECRET="bench-secret-0123456789abcdef"
list_id="dispatch.example.com"

# Enough distinct tokens that none repeats at 40,000 requests a second.
n=$(( duration * 40000 ))
/usr/bin/python3 benches/serve_tokens.py "$PRESSROOM_SECRET" "$list_id" "$n" "$work/paths.txt"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --root "$work" --quiet serve --listen "127.0.0.1:$port" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

echo "== one-click unsubscribes (POST, distinct tokens, $post_connections connections, ${duration}s)"
PATHS="$work/paths.txt" THREADS="$threads" wrk --latency -t"$threads" -c"$post_connections" -d"${duration}s" \
  -s benches/serve_unsubscribe.lua "http://127.0.0.1:$port" | tee "$work/post.txt"
rows=$(/usr/bin/python3 -c "import sqlite3,sys; c=sqlite3.connect('file:$work/.pressroom/state.db?mode=ro', uri=True); print(c.execute('select count(*) from suppressions').fetchone()[0])")
echo "ledger: $rows suppressions recorded"

page=$(head -1 "$work/paths.txt")
echo "== GET $(echo "$page" | cut -c1-40)… (unsubscribe page)"
wrk --latency -t"$threads" -c"$connections" -d"${duration}s" "http://127.0.0.1:$port$page" | tee "$work/get-unsub.txt"
echo "== GET /subscribe"
wrk --latency -t"$threads" -c"$connections" -d"${duration}s" "http://127.0.0.1:$port/subscribe" | tee "$work/get-sub.txt"

peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT

fig() { # file -> "req/s p99"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$1")
  p99=$(awk '$1 == "99%" {print $2}' "$1")
  echo "$rps $p99"
}
read -r post_rps post_p99 < <(fig "$work/post.txt")
read -r gu_rps gu_p99 < <(fig "$work/get-unsub.txt")
read -r gs_rps gs_p99 < <(fig "$work/get-sub.txt")
ok=$(awk '/^answers:/ {print $2}' "$work/post.txt")
echo
echo "| load | connections | requests/s | p99 latency |"
echo "| --- | ---: | ---: | ---: |"
echo "| one-click POST, distinct tokens ($ok x 200, $rows rows in the ledger) | $post_connections | $post_rps | $post_p99 |"
echo "| GET /unsubscribe?token=… | $connections | $gu_rps | $gu_p99 |"
echo "| GET /subscribe | $connections | $gs_rps | $gs_p99 |"
echo
echo "peak memory (VmHWM) of serve: $(( peak / 1024 )) MB ($peak kB)"
