//! Dates in front matter: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (both in the
//! site's time zone) or RFC 3339 with its own offset.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The accepted forms, for error messages.
pub const FORMS: &str = "YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339";

/// Parses a front-matter date. Local times that a daylight-saving change
/// makes ambiguous take the earlier instant; ones it skips are an error.
pub fn parse(value: &str, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    let value = value.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(value) {
        return Ok(dt);
    }
    let naive = if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).expect("midnight exists")
    } else if let Some(dt) = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
    {
        dt
    } else {
        return Err(describe_failure(value));
    };
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => Ok(dt.fixed_offset()),
        LocalResult::Ambiguous(earlier, _) => Ok(earlier.fixed_offset()),
        LocalResult::None => Err(format!(
            "`{value}` does not exist in {tz} (the clocks skip it); pick another time"
        )),
    }
}

/// Says why a date did not parse: an impossible calendar date reads
/// differently from a value in the wrong form.
fn describe_failure(value: &str) -> String {
    let date_part = value.get(..10).unwrap_or(value);
    let parts: Vec<&str> = date_part.split('-').collect();
    if let [y, m, d] = parts.as_slice() {
        if let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) {
            if y > 0 && y.to_string().len() == 4 && NaiveDate::from_ymd_opt(y, m, d).is_none() {
                return format!("`{value}` is not a date that exists");
            }
        }
    }
    format!("`{value}` is not a date; use {FORMS}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    #[test]
    fn date_only_is_midnight_in_the_site_zone() {
        let dt = parse("2025-03-09", Berlin).unwrap();
        assert_eq!(dt.to_rfc3339(), "2025-03-09T00:00:00+01:00");
        let summer = parse("2025-07-01", Berlin).unwrap();
        assert_eq!(summer.to_rfc3339(), "2025-07-01T00:00:00+02:00");
    }

    #[test]
    fn time_forms_are_local_to_the_site() {
        assert_eq!(
            parse("2025-03-09 14:30", Berlin).unwrap().to_rfc3339(),
            "2025-03-09T14:30:00+01:00"
        );
        assert_eq!(
            parse("2025-03-09 14:30:15", Berlin).unwrap().to_rfc3339(),
            "2025-03-09T14:30:15+01:00"
        );
    }

    #[test]
    fn rfc3339_keeps_its_own_offset() {
        let dt = parse("2025-03-09T08:00:00-05:00", Berlin).unwrap();
        assert_eq!(dt.to_rfc3339(), "2025-03-09T08:00:00-05:00");
        assert_eq!(
            parse("2025-03-09T08:00:00Z", Berlin).unwrap().to_rfc3339(),
            "2025-03-09T08:00:00+00:00"
        );
    }

    #[test]
    fn daylight_saving_edges() {
        // 02:30 on 2025-03-30 does not exist in Berlin.
        let err = parse("2025-03-30 02:30", Berlin).unwrap_err();
        assert!(err.contains("does not exist in Europe/Berlin"), "{err}");
        // 02:30 on 2025-10-26 happens twice; the first one is taken.
        assert_eq!(
            parse("2025-10-26 02:30", Berlin).unwrap().to_rfc3339(),
            "2025-10-26T02:30:00+02:00"
        );
    }

    #[test]
    fn impossible_and_malformed_dates_say_which() {
        assert_eq!(
            parse("2025-02-30", Berlin).unwrap_err(),
            "`2025-02-30` is not a date that exists"
        );
        assert_eq!(
            parse("next tuesday", Berlin).unwrap_err(),
            "`next tuesday` is not a date; use YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339"
        );
    }
}
