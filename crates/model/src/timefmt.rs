//! Timestamps: CloudTrail's `eventTime` in, milliseconds since the Unix epoch (UTC) out.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type EpochMillis = i64;

/// Parses an RFC 3339 timestamp (`2024-01-15T10:45:23Z`, with optional fraction and offset).
///
/// CloudTrail always writes `YYYY-MM-DDTHH:MM:SSZ`; that shape takes a fast path. Two
/// spellings that re-exporters produce are accepted too, because CloudTrail time is always
/// UTC: a space instead of `T` (RFC 3339 §5.6 allows it) and a missing offset (read as UTC).
/// Impossible dates (`2019-01-00`) are rejected.
pub fn parse_rfc3339_millis(s: &str) -> Option<EpochMillis> {
    if let Some(ms) = parse_cloudtrail_fast(s.as_bytes()) {
        return Some(ms);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let b = s.as_bytes();
    if b.len() < 19 || !matches!(b[10], b' ' | b'T' | b't') {
        return None;
    }
    let has_offset = s.ends_with(['Z', 'z']) || b[19..].iter().any(|&c| c == b'+' || c == b'-');
    let normalised = format!("{}T{}{}", &s[..10], &s[11..], if has_offset { "" } else { "Z" });
    let t = OffsetDateTime::parse(&normalised, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn parse_cloudtrail_fast(b: &[u8]) -> Option<EpochMillis> {
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let date =
        Date::from_calendar_date(num(0..4)? as i32, Month::try_from(num(5..7)? as u8).ok()?, num(8..10)? as u8).ok()?;
    let time = Time::from_hms(num(11..13)? as u8, num(14..16)? as u8, num(17..19)? as u8).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp() * 1000)
}

/// Formats as CloudTrail does: `YYYY-MM-DDTHH:MM:SSZ`, or with `.mmm` when there are millis.
/// The wall clock in epoch milliseconds (0 if the clock is before 1970).
/// A time as people type it: `now`, RFC 3339, a date (its start, or its last millisecond
/// with `end_of_day`), `YYYY-MM-DDTHH:MM` (UTC), or an age before `now_ms` (`30m`, `12h`, `7d`,
/// `2w`). The error says what is accepted.
pub fn parse_time(value: &str, now_ms: EpochMillis, end_of_day: bool) -> Result<EpochMillis, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(ms) = parse_rfc3339_millis(v) {
        return Ok(ms);
    }
    let b = v.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let Some(start) = parse_rfc3339_millis(&format!("{v}T00:00:00Z")) {
            return Ok(if end_of_day { start + 86_400_000 - 1 } else { start });
        }
    }
    if b.len() == 16 && b[10] == b'T' {
        if let Some(ms) = parse_rfc3339_millis(&format!("{v}:00Z")) {
            return Ok(ms);
        }
    }
    if let Some(ms) = span_millis(v) {
        let Some(ms) = ms.checked_abs() else { return Err(format!("{value:?} is out of range")) };
        return Ok(now_ms.saturating_sub(ms));
    }
    Err(format!(
        "{value:?} is not a time: use RFC 3339 (2024-01-15T10:00:00Z), a date (2024-01-15) or an age (30m, 12h, 7d)"
    ))
}

/// `<n><s|m|h|d|w>` in milliseconds (saturating), if `v` has that form.
fn span_millis(v: &str) -> Option<i64> {
    let unit = v.chars().last().filter(|c| "smhdw".contains(*c))?;
    let n = v[..v.len() - 1].parse::<i64>().ok()?;
    Some(n.saturating_mul(match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => 7 * 86_400_000,
    }))
}

/// A length of time as people type it (`90d`, `12h`, `2w`, `30m`, `45s`) in milliseconds;
/// positive.
pub fn parse_duration(value: &str) -> Result<i64, String> {
    match span_millis(value.trim()) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(format!("{value:?} is not a length of time: use a number and s, m, h, d or w (90d, 12h)")),
    }
}

pub fn now_millis() -> EpochMillis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn format_millis(ms: EpochMillis) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    let t = t.to_offset(UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match t.millisecond() {
        0 => format!("{base}Z"),
        m => format!("{base}.{m:03}Z"),
    }
}

/// UTC calendar fields of a timestamp: (year, month, day, hour, minute, second).
pub fn civil(ms: EpochMillis) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some((t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()))
}

/// Milliseconds for a UTC calendar time; `None` when a field is out of range.
pub fn from_civil(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<EpochMillis> {
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cloudtrail_shape_and_general_rfc3339() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339_millis("2024-01-15T10:45:23Z"), Some(1_705_315_523_000));
        assert_eq!(parse_rfc3339_millis("2024-01-15T10:45:23.5Z"), Some(1_705_315_523_500));
        assert_eq!(parse_rfc3339_millis("2024-01-15T11:45:23+01:00"), Some(1_705_315_523_000));
        assert_eq!(parse_rfc3339_millis("2024-02-30T10:45:23Z"), None);
        let day = |d: &str| parse_rfc3339_millis(&format!("{d}T00:00:00Z")).unwrap();
        assert_eq!(day("2024-03-01") - day("2024-02-28"), 2 * 86_400_000); // a leap year
        assert_eq!(parse_rfc3339_millis("2019-01-00T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_millis("2024-01-15 10:45:23.000000000"), Some(1_705_315_523_000));
        assert_eq!(parse_rfc3339_millis("2024-01-15 10:45:23"), Some(1_705_315_523_000));
        assert_eq!(parse_rfc3339_millis("2024-01-15 11:45:23+01:00"), Some(1_705_315_523_000));
        assert_eq!(parse_rfc3339_millis("2024-01-15 10:45"), None);
        assert_eq!(parse_rfc3339_millis("redacted"), None);
        assert_eq!(parse_rfc3339_millis(""), None);
    }

    #[test]
    fn formats_like_cloudtrail() {
        assert_eq!(format_millis(1_705_315_523_000), "2024-01-15T10:45:23Z");
        assert_eq!(format_millis(1_705_315_523_250), "2024-01-15T10:45:23.250Z");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0i64..4_102_444_800) {
            let ms = secs * 1000;
            prop_assert_eq!(parse_rfc3339_millis(&format_millis(ms)), Some(ms));
        }

        #[test]
        fn fast_path_agrees_with_the_general_parser(secs in 0i64..4_102_444_800) {
            let s = format_millis(secs * 1000);
            let general = OffsetDateTime::parse(&s, &Rfc3339).unwrap().unix_timestamp() * 1000;
            prop_assert_eq!(parse_cloudtrail_fast(s.as_bytes()), Some(general));
        }
    }
}
