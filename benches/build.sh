#!/usr/bin/env bash
# Build benchmark: `pressroom build` (cold and no-op) side by side with Hugo
# on the same synthetic articles, at several sizes, two scenarios each:
#
#   limit20  feeds hold the 20 newest items (pressroom [feeds] limit = 20,
#            Hugo [services.rss] limit = 20)
#   all      feeds hold every published item with full content
#            (pressroom limit = 0: rss.xml + atom.xml + feed.json; Hugo
#            limit = -1: its one RSS feed, .Content of every page)
#   tags     as "all", plus a feed per tag (pressroom tag_feeds = true:
#            the three files under tags/<tag>/; Hugo: the RSS feed of each
#            tag's term page). The 1-3 tags per article come from a set
#            of 30, so each article is in 2-4 feeds.
#
# Full content everywhere; no tag feeds in the first two scenarios (Hugo
# builds no taxonomy feeds there either); warm page cache. "Cold" means no output
# folder and no build cache (pressroom's .pressroom/, Hugo's public/ and
# resources/); "no-op" is pressroom run again with nothing changed.
# The runs of one scenario are interleaved (pressroom cold, pressroom
# no-op, Hugo, then again) and the table shows medians. Wall time is
# taken from spawning the process to reaping it, peak RSS is its
# ru_maxrss (benches/measure.c; the same figure GNU time's %M gives).
# "Floor" is benches/floor.c stat'ing the same article files, one after
# another, and nothing else: the least a no-op build could cost (run
# right after each no-op; "no-op/floor" is the ratio of the medians).
# "Files written by no-op" counts the files under public/ and .pressroom/
# whose inode, size or times differ after the no-op, or that it created
# or removed. The header names the commit and the binary's hash.
#
# Usage: bash benches/build.sh [--sizes 1000,10000,100000] [--runs 5]
#                              [--hugo-runs-big 1] [--hugo-all-max 10000]
#                              [--work DIR] [--no-hugo]
#                              [--scenarios limit20,all,tags]
#                              [--layout files|bundles]
#
#   --sizes          article counts (default 1000,10000,100000)
#   --runs           runs per scenario (default 5)
#   --hugo-runs-big  Hugo runs per scenario for sizes >= 50000 (default 1:
#                    Hugo takes minutes there); pressroom always gets --runs
#   --hugo-all-max   largest size at which Hugo runs the "all" and "tags"
#                    scenarios (default 10000: Hugo needs about 2.6 GB at
#                    10k and grows linearly, so 100k would need more memory
#                    than a 24 GB machine can spare); pressroom always runs
#                    them
#   --work           where generated sites live (default target/bench);
#                    a site is generated once and reused while gen.rs and
#                    the size stay the same
#   --no-hugo        pressroom only
#   --scenarios      which scenarios, in order (default limit20,all,tags)
#   --layout         files: content/YYYY/post-N.md (default); bundles: a
#                    folder per article, content/YYYY/post-N/index.md (as
#                    Hugo's page bundles keep an article with its images)
#
# Raw numbers of every run go to WORK/runs.tsv.
set -euo pipefail

sizes=1000,10000,100000
runs=5
hugo_runs_big=1
hugo_all_max=10000
work=
use_hugo=1
scenarios=limit20,all,tags
layout=files
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) sizes=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --hugo-runs-big) hugo_runs_big=$2; shift 2 ;;
        --hugo-all-max) hugo_all_max=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --no-hugo) use_hugo=0; shift ;;
        --scenarios) scenarios=$2; shift 2 ;;
        --layout) layout=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

case "$layout" in
    files) site_prefix=site gen_flags=() ;;
    bundles) site_prefix=bundles gen_flags=(--bundles) ;;
    *) echo "unknown layout: $layout (files or bundles)" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${work:-$repo/target/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)

if [ "$use_hugo" = 1 ] && ! command -v hugo >/dev/null; then
    echo "note: hugo is not installed (apt-get install -y hugo); measuring pressroom only" >&2
    use_hugo=0
fi

echo "building pressroom (release) and the site generator…" >&2
(cd "$repo" && cargo build --release --quiet)
built_from=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo 'no git')
pressroom=$repo/target/release/pressroom
rustc --edition 2021 -O "$repo/benches/gen.rs" -o "$work/gen"
cc -O2 -Wall -o "$work/measure" "$repo/benches/measure.c"
cc -O2 -Wall -o "$work/floor" "$repo/benches/floor.c"
gen_hash=$(sha256sum "$repo/benches/gen.rs" | cut -c1-16)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure DIR CMD… — runs CMD in DIR; prints "wall_us peak_kb"
# (benches/measure.c: the command's own time, not the shell's).
measure() {
    local dir=$1; shift
    if ! "$work/measure" "$dir" "$tmp/out" "$@" >"$tmp/measured"; then
        echo "failed in $dir: $*" >&2
        cat "$tmp/out" >&2
        exit 1
    fi
    cat "$tmp/measured"
}

# stamps DIR… — every file under DIR with its inode, size and
# modification and change times (nanoseconds), a line each, sorted.
stamps() {
    find "$@" -type f -printf '%p\t%i %s %T@ %C@\n' 2>/dev/null | sort
}

# median N… — of whole numbers; "-" when there are none.
median() {
    if [ $# -eq 0 ]; then echo "-"; return; fi
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

secs() { [ "$1" = "-" ] && echo "-" || awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000000 }'; }
mb() { [ "$1" = "-" ] && echo "-" || awk -v kb="$1" 'BEGIN { printf "%.0f", kb / 1024 }'; }
ratio() { { [ "$1" = "-" ] || [ "$2" = "-" ]; } && echo "-" || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

printf 'size\tscenario\ttool\trun\twall_us\tpeak_kb\n' >"$work/runs.tsv"
rows=()
IFS=, read -r -a size_list <<<"$sizes"
for n in "${size_list[@]}"; do
    site=$work/$site_prefix-$n
    if [ "$(cat "$site/.generated" 2>/dev/null)" != "$n $gen_hash" ]; then
        echo "generating $n articles in $site…" >&2
        rm -rf "$site"
        "$work/gen" "$n" "$site" "${gen_flags[@]+"${gen_flags[@]}"}"
        echo "$n $gen_hash" >"$site/.generated"
        # pressroom trusts modification times once they are 2 s old.
        sleep 2
    fi
    # The article files, for the floor.
    (cd "$site/pressroom" && find content -type f -name '*.md' | sort) >"$tmp/articles"
    hugo_runs=$runs
    [ "$n" -ge 50000 ] && hugo_runs=$hugo_runs_big
    IFS=, read -r -a scenario_list <<<"$scenarios"
    for scenario in "${scenario_list[@]}"; do
        run_hugo=$use_hugo
        [ "$scenario" != limit20 ] && [ "$n" -gt "$hugo_all_max" ] && run_hugo=0
        cp "$site/pressroom/config-$scenario.toml" "$site/pressroom/config.toml"
        cold_us=() cold_kb=() noop_us=() noop_kb=() floor_us=() hugo_us=() hugo_kb=()
        rewritten=0
        for ((r = 1; r <= runs; r++)); do
            echo "  $n $scenario run $r/$runs" >&2
            rm -rf "$site/pressroom/public" "$site/pressroom/.pressroom"
            read -r us kb < <(measure "$site/pressroom" "$pressroom" --quiet build)
            cold_us+=("$us") cold_kb+=("$kb")
            printf '%s\t%s\tpressroom-cold\t%s\t%s\t%s\n' "$n" "$scenario" "$r" "$us" "$kb" >>"$work/runs.tsv"

            stamps "$site/pressroom/public" "$site/pressroom/.pressroom" >"$tmp/before"
            read -r us kb < <(measure "$site/pressroom" "$pressroom" --quiet build)
            noop_us+=("$us") noop_kb+=("$kb")
            printf '%s\t%s\tpressroom-noop\t%s\t%s\t%s\n' "$n" "$scenario" "$r" "$us" "$kb" >>"$work/runs.tsv"
            # Files the no-op created, changed, replaced or removed, in the
            # output folder or the build cache: any write shows in the stamps.
            stamps "$site/pressroom/public" "$site/pressroom/.pressroom" >"$tmp/after"
            changed=$(comm -3 "$tmp/before" "$tmp/after" | sed 's/^\t//' | cut -f1 | sort -u | wc -l)
            rewritten=$((rewritten + changed))

            read -r us kb < <(measure "$site/pressroom" "$work/floor" "$tmp/articles")
            floor_us+=("$us")
            printf '%s\t%s\tfloor\t%s\t%s\t%s\n' "$n" "$scenario" "$r" "$us" "$kb" >>"$work/runs.tsv"

            if [ "$run_hugo" = 1 ] && [ "$r" -le "$hugo_runs" ]; then
                rm -rf "$site/hugo/public" "$site/hugo/resources"
                read -r us kb < <(measure "$site/hugo" hugo --quiet --config "hugo-$scenario.toml" --cacheDir "$site/hugo/resources/cache")
                hugo_us+=("$us") hugo_kb+=("$kb")
                printf '%s\t%s\thugo\t%s\t%s\t%s\n' "$n" "$scenario" "$r" "$us" "$kb" >>"$work/runs.tsv"
            fi
        done
        # Items in every RSS file (the main feed, and each tag's).
        items=$(find "$site/pressroom/public" -name rss.xml -exec cat {} + | grep -c '<item>' || true)
        c_us=$(median "${cold_us[@]}") c_kb=$(median "${cold_kb[@]}")
        o_us=$(median "${noop_us[@]}") f_us=$(median "${floor_us[@]}")
        h_us=$(median "${hugo_us[@]+"${hugo_us[@]}"}") h_kb=$(median "${hugo_kb[@]+"${hugo_kb[@]}"}")
        h_items=-
        if [ "${#hugo_us[@]}" -gt 0 ]; then
            h_items=$(find "$site/hugo/public" -name index.xml -exec cat {} + | grep -c '<item>' || true)
        fi
        rows+=("$(printf '%s\t%s\t%s/%s\t%s\t%s\t%s\t%s%%\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' \
            "$n" "$scenario" "$items" "$h_items" \
            "$(secs "$c_us")" "$(mb "$c_kb")" "$(secs "$o_us")" "$(awk -v a="$o_us" -v b="$c_us" 'BEGIN { printf "%.1f", 100 * a / b }')" \
            "$(secs "$f_us")" "$(ratio "$o_us" "$f_us")" \
            "$rewritten" "$(secs "$h_us")" "$(mb "$h_kb")" \
            "$(ratio "$c_us" "$h_us")" "$(ratio "$c_kb" "$h_kb")" "${#hugo_us[@]}")")
    done
done

echo
echo "pressroom $("$pressroom" --version | awk '{ print $2 }') ($built_from, binary sha256 $(sha256sum "$pressroom" | cut -c1-12)), $( [ "$use_hugo" = 1 ] && hugo version | awk '{ print $1, $2 }' || echo 'no hugo'), $(nproc) cores, $layout layout; medians of $runs runs (Hugo runs in the last column)"
{
    printf 'articles\tscenario\titems p/h\tp cold s\tp MB\tp no-op s\tno-op/cold\tfloor s\tno-op/floor\tfiles written by no-op\thugo s\thugo MB\ttime p/h\tmem p/h\thugo runs\n'
    printf '%s\n' "${rows[@]}"
} | column -t -s $'\t'
echo
echo "p = pressroom (rss.xml + atom.xml + feed.json per feed), h = Hugo (one RSS file per feed); items = <item>s in all RSS files; p/h < 1 means pressroom is faster / smaller."
