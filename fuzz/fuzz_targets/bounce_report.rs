//! Arbitrary bytes as a raw report: `bounce::parse` never panics, and
//! every report it returns keeps what `Report` documents (a one-line
//! diagnostic of at most 500 characters, ids without `<>` or blanks,
//! addresses with `@` and no blanks, `legacy` only on a hard or soft
//! verdict). Bytes without a header block are refused, never read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom::bounce::{parse, Verdict, DIAGNOSTIC_MAX_CHARS};

fuzz_target!(|data: &[u8]| {
    let Ok(report) = parse(data) else {
        return;
    };
    if let Some(diagnostic) = &report.diagnostic {
        assert!(diagnostic.chars().count() <= DIAGNOSTIC_MAX_CHARS, "{diagnostic:?}");
        assert!(!diagnostic.contains(['\r', '\n']), "{diagnostic:?}");
    }
    for id in report.id.iter().chain(&report.original_message_id) {
        assert!(!id.is_empty() && !id.contains(char::is_whitespace), "{id:?}");
        assert!(!id.starts_with('<') && !id.ends_with('>'), "{id:?}");
    }
    for address in report.recipient.iter().chain(&report.delivered_to) {
        assert!(address.contains('@'), "{address:?}");
        assert!(!address.contains(char::is_whitespace), "{address:?}");
    }
    if report.legacy {
        assert!(matches!(report.verdict, Verdict::Hard | Verdict::Soft), "{report:?}");
    }
});
