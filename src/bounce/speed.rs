//! The parse-speed benchmark (ignored by default): every corpus message
//! parsed many times, printing microseconds per report, overall and for
//! the slowest message. Figures and the command are in
//! `tests/bounces/README.md`:
//!
//! ```sh
//! CARGO_PROFILE_TEST_OPT_LEVEL=3 cargo test --lib bounce::speed -- --ignored --nocapture
//! ```

use std::time::Instant;

use super::corpus::corpus_dir;
use super::parse;

#[test]
#[ignore = "a benchmark: run it on its own, with optimisation (see the module doc)"]
fn parse_speed_over_the_corpus() {
    let dir = corpus_dir();
    let mut messages: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let raw = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name.unwrap_or_default(), raw)
        })
        .collect();
    messages.sort();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    // One warm-up round, then timed rounds.
    let mut reports = 0usize;
    for (_, raw) in &messages {
        reports += usize::from(parse(raw).is_ok());
    }
    assert_eq!(reports, messages.len(), "every corpus message is read");
    let mut per_message = vec![0u128; messages.len()];
    let mut round_times = Vec::with_capacity(rounds);
    let start = Instant::now();
    for _ in 0..rounds {
        let round = Instant::now();
        for (i, (_, raw)) in messages.iter().enumerate() {
            let t = Instant::now();
            let report = parse(std::hint::black_box(raw));
            std::hint::black_box(&report);
            per_message[i] += t.elapsed().as_nanos();
        }
        round_times.push(round.elapsed().as_secs_f64());
    }
    let total = start.elapsed();
    let count = rounds * messages.len();
    let bytes: usize = messages.iter().map(|(_, raw)| raw.len()).sum();
    let per_report = |seconds: f64| seconds * 1e6 / messages.len() as f64;
    round_times.sort_by(f64::total_cmp);
    let best_us = per_report(round_times[0]);
    let median_round_us = per_report(round_times[round_times.len() / 2]);
    let mean_us = total.as_secs_f64() * 1e6 / count as f64;
    let (slowest, slowest_ns) = per_message
        .iter()
        .enumerate()
        .max_by_key(|(_, ns)| **ns)
        .map(|(i, ns)| (messages[i].0.as_str(), *ns))
        .unwrap_or(("", 0));
    println!(
        "{} messages ({} KB in all), {rounds} rounds, {count} parses in {:.2} s",
        messages.len(),
        bytes / 1024,
        total.as_secs_f64()
    );
    println!(
        "µs/report: best round {best_us:.1}, median round {median_round_us:.1}, mean {mean_us:.1} \
         ({:.0} reports/s on one core at the median); slowest message {slowest} {:.1} µs",
        1e6 / median_round_us,
        slowest_ns as f64 / rounds as f64 / 1000.0
    );
}
