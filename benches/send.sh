#!/usr/bin/env bash
# Send benchmark: `pressroom send` delivering one issue to N personalised
# subscribers through a local discard SMTP sink, side by side with a plain
# Python smtplib loop sending the same number of messages of the same size
# over one connection to the same sink.
#
# The site is a copy of this repository's config.toml and content/ with
# [send] per_second = 0 (no pacing) and [smtp] pointing at the sink; the
# subscriber list has a name and a `city` field per row, so every message
# is personalised (To, name, unsubscribe token, Message-ID). The issue is
# the sample site's digest, sent with `--include-existing`; each run starts
# from an empty ledger. The Python loop sends the .eml that
# `pressroom preview --to` writes for the first subscriber (byte for byte
# what a send delivers), to a different RCPT each time.
#
# The sink's CPU time is measured too (from /proc) and shown per message,
# so a table shows when the sink, not the client, sets the pace. Runs are interleaved (pressroom, python, pressroom, …) and the
# table shows medians. CPU = user + sys of the client process, from
# /usr/bin/time; peak RSS is its %M.
#
# Two sinks: `rust` (benches/sink.rs, std only, one thread per
# connection, a few µs of CPU per message, so the clients set the pace)
# and `aiosmtpd` (benches/discard_smtp.py: a common Python choice, but
# about 1 ms of CPU per message, which caps every client near 1,000
# messages a second). Each sink gets its own table.
#
# Usage: bash benches/send.sh [--sizes 10000,100000] [--runs 3]
#                             [--big-runs 1] [--concurrency 1] [--work DIR]
#                             [--sinks rust,aiosmtpd] [--extra-concurrency N]
#                             [--binary PATH]
#
#   --sizes        subscriber counts (default 10000,100000)
#   --runs         runs per client for sizes below 50000 (default 3)
#   --big-runs     runs per client for sizes of 50000 and more (default 1)
#   --concurrency  pressroom's [send] concurrency (SMTP connections,
#                  default 1: the same single connection as the Python loop)
#   --work         where the site lives (default target/bench-send)
#   --sinks        which sinks, in order (default rust,aiosmtpd)
#   --extra-concurrency  also run pressroom with this many connections
#                  (an extra row; the headline compares one connection
#                  with one connection)
#   --binary       measure this pressroom binary instead of building the
#                  repository's (to compare versions)
#
# Raw numbers of every run go to WORK/runs.tsv.
set -euo pipefail

sizes=10000,100000
runs=3
big_runs=1
concurrency=1
work=
sinks=rust,aiosmtpd
extra=
binary=
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) sizes=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --big-runs) big_runs=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --sinks) sinks=$2; shift 2 ;;
        --extra-concurrency) extra=$2; shift 2 ;;
        --binary) binary=$(realpath "$2"); shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${work:-$repo/target/bench-send}
mkdir -p "$work"
work=$(cd "$work" && pwd)
py=/usr/bin/python3

if [ ! -x /usr/bin/time ]; then
    echo "GNU time is needed: apt-get install -y time" >&2
    exit 2
fi
if ! "$py" -c 'import aiosmtpd' 2>/dev/null; then
    echo "the sink needs python3-aiosmtpd: apt-get install -y python3-aiosmtpd" >&2
    exit 2
fi

echo "building pressroom (release) and the sink…" >&2
if [ -z "$binary" ]; then
    (cd "$repo" && cargo build --release --quiet)
fi
pressroom=${binary:-$repo/target/release/pressroom}
rustc --edition 2021 -O "$repo/benches/sink.rs" -o "$work/sink"

tmp=$(mktemp -d)
sink_pid=
stop_sink() {
    if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
    sink_pid=
}
cleanup() {
    stop_sink
    rm -rf "$tmp"
}
trap cleanup EXIT

# start_sink KIND — starts the sink, sets $port and $sink_pid.
start_sink() {
    case "$1" in
        rust) "$work/sink" >"$tmp/sink.out" 2>"$tmp/sink.err" & ;;
        aiosmtpd) "$py" "$repo/benches/discard_smtp.py" >"$tmp/sink.out" 2>"$tmp/sink.err" & ;;
        *) echo "unknown sink: $1 (rust or aiosmtpd)" >&2; exit 2 ;;
    esac
    sink_pid=$!
    for _ in $(seq 100); do
        grep -q '^PORT ' "$tmp/sink.out" 2>/dev/null && break
        sleep 0.05
    done
    port=$(awk '/^PORT /{ print $2 }' "$tmp/sink.out")
    if [ -z "$port" ]; then
        echo "the sink did not start:" >&2
        cat "$tmp/sink.err" >&2
        exit 1
    fi
    echo "discard sink ($1) on 127.0.0.1:$port, pid $sink_pid" >&2
}

# sink_ticks — CPU clock ticks (user + sys) the sink has used so far.
sink_ticks() { awk '{ print $14 + $15 }' "/proc/$sink_pid/stat"; }
hz=$(getconf CLK_TCK)

export PRESSROOM_SECRET=bench-secret-0123456789abcdef
unset PRESSROOM_SMTP_URL PRESSROOM_SMTP_PASSWORD

# make_site N C — the sample site with N subscribers and [send]
# concurrency C, in $work/site-N-C.
make_site() {
    local n=$1 c=$2 site=$work/site-$1-$2
    rm -rf "$site"
    mkdir -p "$site"
    cp "$repo/config.toml" "$site/config.toml"
    cp -r "$repo/content" "$site/content"
    cat >>"$site/config.toml" <<TOML

[send]
subscribers = "subscribers.csv"
per_second = 0
concurrency = $c

[smtp]
url = "smtp://127.0.0.1:$port?tls=none"
TOML
    awk -v n="$n" 'BEGIN {
        print "email,name,city"
        for (i = 0; i < n; i++) printf "reader%d@example.com,Reader %d,City %d\n", i, i, i % 97
    }' >"$site/subscribers.csv"
    echo "$site"
}

# measure OUT CMD… — runs CMD; prints "wall_s cpu_s peak_kb sink_cpu_s".
measure() {
    local out=$1; shift
    local before after
    before=$(sink_ticks)
    if ! /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >"$out" 2>&1; then
        echo "failed: $*" >&2
        tail -n 20 "$out" >&2
        exit 1
    fi
    after=$(sink_ticks)
    awk -v sink=$((after - before)) -v hz="$hz" '{ printf "%s %.2f %s %.2f\n", $1, $2 + $3, $4, sink / hz }' "$tmp/time"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# send_once SITE N — one pressroom run from an empty ledger; checks that
# all N were sent; prints what measure prints.
send_once() {
    local site=$1 n=$2 result sent
    rm -rf "$site/.pressroom"
    result=$(measure "$tmp/p.out" env -C "$site" "$pressroom" send --include-existing)
    sent=$(sqlite3 "$site/.pressroom/state.db" "select count(*) from deliveries where state = 'sent'" 2>/dev/null || echo "?")
    if [ "$sent" != "?" ] && [ "$sent" != "$n" ]; then
        echo "pressroom sent $sent of $n:" >&2
        tail -n 20 "$tmp/p.out" >&2
        exit 1
    fi
    echo "$result"
}

printf 'sink\tsize\ttool\trun\twall_s\tcpu_s\tpeak_kb\tsink_cpu_s\n' >"$work/runs.tsv"
IFS=, read -r -a sink_list <<<"$sinks"
IFS=, read -r -a size_list <<<"$sizes"
for sink in "${sink_list[@]}"; do
    start_sink "$sink"
    rows=()
    for n in "${size_list[@]}"; do
        site=$(make_site "$n" "$concurrency")
        x_site=
        [ -n "$extra" ] && x_site=$(make_site "$n" "$extra")
        r_runs=$runs
        [ "$n" -ge 50000 ] && r_runs=$big_runs
        # The Python loop's message: what a send delivers to the first reader.
        rm -rf "$site/preview"
        (cd "$site" && "$pressroom" --quiet preview --to reader0@example.com --out preview >/dev/null)
        eml=$(find "$site/preview" -name '*.eml' | head -n 1)
        size=$(stat -c %s "$eml")
        p_wall=() p_cpu=() p_kb=() p_sink=() y_wall=() y_cpu=() y_kb=() y_sink=()
        x_wall=() x_cpu=() x_kb=() x_sink=()
        for ((r = 1; r <= r_runs; r++)); do
            echo "  $sink $n run $r/$r_runs: pressroom" >&2
            read -r wall cpu kb sk < <(send_once "$site" "$n")
            p_wall+=("$wall") p_cpu+=("$cpu") p_kb+=("$kb") p_sink+=("$sk")
            printf '%s\t%s\tpressroom\t%s\t%s\t%s\t%s\t%s\n' "$sink" "$n" "$r" "$wall" "$cpu" "$kb" "$sk" >>"$work/runs.tsv"

            echo "  $sink $n run $r/$r_runs: python smtplib" >&2
            read -r wall cpu kb sk < <(measure "$tmp/y.out" "$py" "$repo/benches/smtplib_loop.py" "$port" "$n" "$eml")
            y_wall+=("$wall") y_cpu+=("$cpu") y_kb+=("$kb") y_sink+=("$sk")
            printf '%s\t%s\tpython\t%s\t%s\t%s\t%s\t%s\n' "$sink" "$n" "$r" "$wall" "$cpu" "$kb" "$sk" >>"$work/runs.tsv"

            if [ -n "$x_site" ]; then
                echo "  $sink $n run $r/$r_runs: pressroom c=$extra" >&2
                read -r wall cpu kb sk < <(send_once "$x_site" "$n")
                x_wall+=("$wall") x_cpu+=("$cpu") x_kb+=("$kb") x_sink+=("$sk")
                printf '%s\t%s\tpressroom-c%s\t%s\t%s\t%s\t%s\t%s\n' "$sink" "$n" "$extra" "$r" "$wall" "$cpu" "$kb" "$sk" >>"$work/runs.tsv"
            fi
        done
        yw=$(median "${y_wall[@]}")
        row() {
            local w c k s
            w=$(median $2) c=$(median $3) k=$(median $4) s=$(median $5)
            awk -v n="$n" -v tool="$1" -v w="$w" -v c="$c" -v k="$k" -v s="$s" -v other="$6" -v runs="$r_runs" 'BEGIN {
                printf "%d\t%s\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%d\n", n, tool, w, n / w, 1e6 * c / n, k / 1024, 1e6 * s / n,
                    (other == "-" ? "-" : sprintf("%.2f", (n / w) / (n / other))), runs }'
        }
        rows+=("$(row "pressroom (c=$concurrency)" "${p_wall[*]}" "${p_cpu[*]}" "${p_kb[*]}" "${p_sink[*]}" "$yw")")
        rows+=("$(row "python smtplib" "${y_wall[*]}" "${y_cpu[*]}" "${y_kb[*]}" "${y_sink[*]}" "-")")
        if [ -n "$x_site" ]; then
            rows+=("$(row "pressroom (c=$extra)" "${x_wall[*]}" "${x_cpu[*]}" "${x_kb[*]}" "${x_sink[*]}" "$yw")")
        fi
    done
    stop_sink
    echo
    echo "sink: $sink; pressroom $("$pressroom" --version | awk '{ print $2 }'), $(nproc) cores, message $size bytes, work dir $work ($(df --output=fstype "$work" | tail -n 1)); medians of interleaved runs"
    {
        printf 'recipients\tclient\twall s\tmsg/s\tclient CPU µs/msg\tpeak RSS MB\tsink CPU µs/msg\tmsg/s vs python\truns\n'
        printf '%s\n' "${rows[@]}"
    } | column -t -s $'\t'
done
echo
echo "client CPU = user + sys of the sending process; sink CPU = the sink process over the same run."
echo "When sink CPU µs/msg × msg/s approaches 1,000,000 the sink, not the client, sets the pace."
echo "The ledger (SQLite, WAL, synchronous=FULL) lives in the work dir: on tmpfs its fsyncs cost nothing."
