//! Arbitrary bytes as a subscribers.csv: reading never panics, every
//! subscriber yielded has an address that parses again, no address is
//! yielded twice (ignoring case), and every line number is in the file.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressroom::delivery::subscribers::Subscribers;
use pressroom::address::EmailAddress;

fuzz_target!(|data: &[u8]| {
    let Ok(mut subscribers) = Subscribers::from_reader(Path::new("subscribers.csv"), data) else {
        return;
    };
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let mut seen = HashSet::new();
    let mut last_line = 0;
    for row in &mut subscribers {
        let Ok(row) = row else {
            continue;
        };
        match EmailAddress::parse(row.email.as_str()) {
            Ok(again) => assert_eq!(again, row.email),
            Err(e) => panic!("yielded address does not parse again: {e}"),
        }
        assert!(
            seen.insert(row.email.normalized()),
            "{} yielded twice",
            row.email
        );
        assert!(
            (1..=lines).contains(&row.line),
            "line {} outside 1..={lines}",
            row.line
        );
        assert!(row.line >= last_line, "line {} after {last_line}", row.line);
        last_line = row.line;
        if let Some(name) = &row.name {
            assert!(!name.is_empty() && name.trim() == name, "name {name:?}");
        }
    }
    for problem in subscribers.problems() {
        assert!(
            (1..=lines).contains(&problem.line),
            "problem line {} outside 1..={lines}: {problem}",
            problem.line
        );
    }
});
