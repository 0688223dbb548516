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
/// Unix seconds.
pub fn unix_secs(date: &str, time: &str) -> Option<f64> {
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split(':').map(|p| p.parse::<f64>().ok());
    let (h, min, s) = (hms.next()??, hms.next()??, hms.next()??);
    Some(days_from_civil(y, m, d) as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + d - 719_469
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
    }
}
