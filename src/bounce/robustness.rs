//! No input panics `bounce::parse`: random bytes, random header blocks,
//! and the corpus messages with random byte changes and truncations. Every
//! report that comes back also keeps the promises `Report` documents.

use proptest::prelude::*;

use super::corpus::corpus_dir;
use super::{parse, Report, Verdict, DIAGNOSTIC_MAX_CHARS};

/// The corpus messages, read once.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = corpus_dir();
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect()
    })
}

/// What every report promises, whatever the input.
fn check_promises(report: &Report) -> Result<(), TestCaseError> {
    if let Some(diagnostic) = &report.diagnostic {
        prop_assert!(
            diagnostic.chars().count() <= DIAGNOSTIC_MAX_CHARS,
            "{diagnostic:?}"
        );
        prop_assert!(!diagnostic.contains(['\r', '\n']), "{diagnostic:?}");
    }
    for id in report.id.iter().chain(&report.original_message_id) {
        prop_assert!(
            !id.is_empty() && !id.contains(char::is_whitespace),
            "{id:?}"
        );
        prop_assert!(!id.starts_with('<') && !id.ends_with('>'), "{id:?}");
    }
    for address in report.recipient.iter().chain(&report.delivered_to) {
        prop_assert!(address.contains('@'), "{address:?}");
        prop_assert!(!address.contains(char::is_whitespace), "{address:?}");
    }
    if report.legacy {
        prop_assert!(
            matches!(report.verdict, Verdict::Hard | Verdict::Soft),
            "{report:?}"
        );
    }
    Ok(())
}

/// One change to a message: overwrite, insert or delete bytes at a place
/// given as a fraction of its length.
#[derive(Debug, Clone)]
enum Change {
    Overwrite(f64, Vec<u8>),
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
}

fn change() -> impl Strategy<Value = Change> {
    // Bytes that matter to MIME and DSN syntax, and any byte.
    let interesting = prop::sample::select(vec![
        b"\r\n".to_vec(),
        b"\n\n".to_vec(),
        b"--".to_vec(),
        b":".to_vec(),
        b";".to_vec(),
        b"=?utf-8?b?".to_vec(),
        b"=\n".to_vec(),
        b"<".to_vec(),
        b"@".to_vec(),
        b"Content-Type: multipart/report; boundary=x\n".to_vec(),
        b"Content-Type: message/delivery-status\n\n".to_vec(),
        b"Status: 5.".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        "é".repeat(300).into_bytes(),
    ]);
    let bytes = prop_oneof![interesting, prop::collection::vec(any::<u8>(), 1..16)];
    prop_oneof![
        (0.0..1.0f64, bytes.clone()).prop_map(|(at, b)| Change::Overwrite(at, b)),
        (0.0..1.0f64, bytes).prop_map(|(at, b)| Change::Insert(at, b)),
        (0.0..1.0f64, 1..64usize).prop_map(|(at, n)| Change::Delete(at, n)),
    ]
}

fn apply(message: &mut Vec<u8>, change: &Change) {
    let place = |at: f64, len: usize| ((at * len as f64) as usize).min(len);
    match change {
        Change::Overwrite(at, bytes) => {
            let start = place(*at, message.len());
            for (i, b) in bytes.iter().enumerate() {
                if let Some(slot) = message.get_mut(start + i) {
                    *slot = *b;
                }
            }
        }
        Change::Insert(at, bytes) => {
            let start = place(*at, message.len());
            message.splice(start..start, bytes.iter().copied());
        }
        Change::Delete(at, n) => {
            let start = place(*at, message.len());
            let end = (start + n).min(message.len());
            message.drain(start..end);
        }
    }
}

/// The number of cases: `PROPTEST_CASES` when set (for a long run), else
/// `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2048), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(report) = parse(&raw) {
            check_promises(&report)?;
        }
    }

    #[test]
    fn random_text_after_a_header_never_panics(
        header in "[A-Za-z-]{1,20}: [ -~]{0,60}\r?\n",
        rest in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut raw = header.into_bytes();
        raw.extend(rest);
        let report = parse(&raw);
        prop_assert!(report.is_ok(), "a header line is a message: {report:?}");
        if let Ok(report) = report {
            check_promises(&report)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1024), ..ProptestConfig::default() })]

    #[test]
    fn changed_and_cut_corpus_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        changes in prop::collection::vec(change(), 0..8),
        keep in 0.0..=1.0f64,
    ) {
        let messages = corpus();
        let mut raw = messages[pick.index(messages.len())].clone();
        for change in &changes {
            apply(&mut raw, change);
        }
        raw.truncate((keep * raw.len() as f64) as usize);
        if let Ok(report) = parse(&raw) {
            check_promises(&report)?;
        }
    }
}

#[test]
fn every_corpus_message_keeps_the_promises() {
    for raw in corpus() {
        let report = parse(raw).map_err(|e| e.to_string());
        let Ok(report) = report else {
            panic!("a corpus message is not read: {report:?}");
        };
        if let Err(failure) = check_promises(&report) {
            panic!("{failure}");
        }
    }
}
