//! Time as the harness records it: Unix seconds, now, and from the dates
//! Docker and the harness's own files print.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as Unix seconds: the harness in the container reads the same clock
/// on a Linux engine (on Docker Desktop the VM's clock may drift a little).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A UTC date (`2026-12-04`) and time of day (`21:27:26.370539084`) as
/// Unix seconds; `None` for one that is malformed or does not exist.
pub fn unix_secs(date: &str, time: &str) -> Option<f64> {
    let at: jiff::civil::DateTime = format!("{date}T{time}").parse().ok()?;
    let utc = at.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(utc.timestamp().as_duration().as_secs_f64())
}

/// `2026-12-04T21:27:26.370539084Z` in seconds since 1970.
pub fn rfc3339_secs(stamp: &str) -> Option<f64> {
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    unix_secs(date, time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_unix_seconds() {
        // `date -d '2026-12-04 21:27:26 UTC' +%s`
        assert_eq!(unix_secs("2026-12-04", "21:27:26"), Some(1_796_419_646.0));
        assert_eq!(unix_secs("1970-01-01", "00:00:00"), Some(0.0));
        assert_eq!(unix_secs("2000-03-01", "00:00:00"), Some(951_868_800.0));
        assert_eq!(unix_secs("2026-12", "00:00:00"), None);
        assert_eq!(unix_secs("2026-13-04", "00:00:00"), None);
        assert_eq!(unix_secs("2026-12-04", "21:27:26.5"), Some(1_796_419_646.5));
    }
}
