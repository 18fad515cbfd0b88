#!/usr/bin/env bash
# Build A/B: several pressroom binaries' builds of the same synthetic
# site (the "limit20" scenario of build.sh), interleaved run by run, to
# compare versions of the code on a machine whose speed drifts from
# minute to minute. No-op builds (the default) run beside the floor
# (benches/floor.c stat'ing the same article files and nothing else);
# each binary gets its own copy of the site (cache formats may differ),
# built twice first (the second build, with settled files, saves the
# cache), and every measured run must report "nothing changed". With
# --cold, each run starts without public/ and .pressroom/.
#
# Usage: bash benches/ab.sh [--size 10000] [--runs 21] [--layout files|bundles]
#                           [--cold] [--work DIR] BINARY...
#
#   --size    articles (default 10000; the site build.sh generates)
#   --runs    runs per binary, and of the floor (default 21)
#   --layout  files (default) or bundles (a folder per article)
#   --cold    measure cold builds (and no floor) instead
#   --work    where sites live (default target/bench, shared with build.sh)
#
# Prints, per binary (and for the floor), the median and the fastest run,
# and the median's ratio to the first binary's (and to the floor's).
set -euo pipefail

size=10000
runs=21
layout=files
work=
cold=0
binaries=()
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --layout) layout=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --cold) cold=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
        *) binaries+=("$(realpath "$1")"); shift ;;
    esac
done
if [ ${#binaries[@]} -eq 0 ]; then
    echo "name at least one pressroom binary (see --help)" >&2
    exit 2
fi
case "$layout" in
    files) site_prefix=site gen_flags=() ;;
    bundles) site_prefix=bundles gen_flags=(--bundles) ;;
    *) echo "unknown layout: $layout (files or bundles)" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${work:-$repo/target/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
rustc --edition 2021 -O "$repo/benches/gen.rs" -o "$work/gen"
cc -O2 -Wall -o "$work/measure" "$repo/benches/measure.c"
cc -O2 -Wall -o "$work/floor" "$repo/benches/floor.c"
gen_hash=$(sha256sum "$repo/benches/gen.rs" | cut -c1-16)

site=$work/$site_prefix-$size
if [ "$(cat "$site/.generated" 2>/dev/null)" != "$size $gen_hash" ]; then
    echo "generating $size articles in $site…" >&2
    rm -rf "$site"
    "$work/gen" "$size" "$site" "${gen_flags[@]+"${gen_flags[@]}"}"
    echo "$size $gen_hash" >"$site/.generated"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in "${!binaries[@]}"; do
    copy=$work/noop-$layout-$size-$i
    rm -rf "$copy"
    cp -a "$site/pressroom" "$copy"
    cp "$copy/config-limit20.toml" "$copy/config.toml"
    rm -rf "$copy/public" "$copy/.pressroom"
done
(cd "$work/noop-$layout-$size-0" && find content -type f -name '*.md' | sort) >"$tmp/articles"
# pressroom trusts modification times once they are 2 s old.
sleep 2.1
for i in "${!binaries[@]}"; do
    copy=$work/noop-$layout-$size-$i
    "${binaries[$i]}" --quiet --root "$copy" build
    "${binaries[$i]}" --quiet --root "$copy" build
done

# median N… of whole numbers
median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
fastest() { printf '%s\n' "$@" | sort -n | head -1; }

declare -A times
floor_us=()
for ((r = 1; r <= runs; r++)); do
    for i in "${!binaries[@]}"; do
        copy=$work/noop-$layout-$size-$i
        [ "$cold" = 1 ] && rm -rf "$copy/public" "$copy/.pressroom"
        read -r us _ < <("$work/measure" "$copy" "$tmp/out" "${binaries[$i]}" build)
        if [ "$cold" = 0 ] && ! grep -q "nothing changed" "$tmp/out"; then
            echo "${binaries[$i]}: not a no-op:" >&2
            cat "$tmp/out" >&2
            exit 1
        fi
        times[$i]="${times[$i]:-} $us"
    done
    if [ "$cold" = 0 ]; then
        read -r us _ < <("$work/measure" "$work/noop-$layout-$size-0" "$tmp/out" "$work/floor" "$tmp/articles")
        floor_us+=("$us")
    fi
done

kind=no-op
[ "$cold" = 1 ] && kind=cold
echo "$kind builds of $size articles ($layout layout), $runs interleaved runs each, $(nproc) cores"
# shellcheck disable=SC2086
first=$(median ${times[0]})
f=$first
[ "$cold" = 0 ] && f=$(median "${floor_us[@]}")
{
    printf 'binary\tmedian ms\tfastest ms\tmedian/first\tmedian/floor\n'
    for i in "${!binaries[@]}"; do
        # shellcheck disable=SC2086
        m=$(median ${times[$i]}) b=$(fastest ${times[$i]})
        printf '%s\t%.1f\t%.1f\t%.2f\t%s\n' "${binaries[$i]}" "$(bc -l <<<"$m / 1000")" "$(bc -l <<<"$b / 1000")" \
            "$(bc -l <<<"$m / $first")" "$([ "$cold" = 0 ] && printf '%.2f' "$(bc -l <<<"$m / $f")" || echo -)"
    done
    if [ "$cold" = 0 ]; then
        printf 'floor (stat only)\t%.1f\t%.1f\t-\t1.00\n' "$(bc -l <<<"$f / 1000")" "$(bc -l <<<"$(fastest "${floor_us[@]}") / 1000")"
    fi
} | column -t -s $'\t'
