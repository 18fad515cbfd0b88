#!/usr/bin/env bash
# The live preview's change-to-screen latency on a generated site:
# `pressroom preview --serve` (release build) on N articles (default
# 1000, from benches/gen.rs), its page open in headless Chromium; one
# article's title is rewritten EDITS times (default 30) and each time the
# time from the write to the page's DOM showing the new title is taken.
# Prints median and p95 (benches/live_preview.py does the measuring).
#
# usage: bash benches/live-preview.sh [N] [EDITS]
# PRESSROOM=path/to/pressroom measures that binary instead of building
# the release one.
# Needs Debian's chromium and python3-websocket (as .ci/run installs).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-1000}"
edits="${2:-30}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

binary="${PRESSROOM:-}"
if [ -z "$binary" ]; then
  echo "building pressroom (release)…" >&2
  (cd "$repo" && cargo build --quiet --release)
  binary="$repo/target/release/pressroom"
fi
echo "measuring $binary" >&2
rustc --edition 2021 -O "$repo/benches/gen.rs" -o "$work/gen"
"$work/gen" "$n" "$work/gen-out" >/dev/null
site="$work/gen-out/pressroom"
cp "$site/config-limit20.toml" "$site/config.toml"

/usr/bin/python3 "$repo/benches/live_preview.py" "$binary" "$site" "$edits"
