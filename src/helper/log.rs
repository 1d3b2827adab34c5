//! Timestamped log lines, written where `kubectl logs` shows them.
//!
//! An exec hook's own stdout/stderr is not collected by the container runtime; only the
//! container's PID 1 output is. So prestop logs go to `/proc/1/fd/2` (PID 1's stderr) when
//! it can be opened for writing, else to the helper's own stderr.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where log lines go.
pub struct Log {
    sink: Option<File>,
    prefix: &'static str,
}

impl Log {
    /// Logs to the helper's own stderr.
    pub fn stderr(prefix: &'static str) -> Log {
        Log { sink: None, prefix }
    }

    /// Logs to the stderr of `pid` (`/proc/PID/fd/2`), falling back to the own stderr when it
    /// cannot be opened (no /proc, another user, closed descriptor).
    pub fn to_process_stderr(pid: i32, prefix: &'static str) -> Log {
        let path = format!("/proc/{pid}/fd/2");
        let sink = OpenOptions::new().append(true).open(path).ok();
        Log { sink, prefix }
    }

    /// Writes one line: `<RFC 3339 UTC timestamp> drain-helper <prefix>: <message>`.
    /// Errors are ignored: logging never stops the drain.
    pub fn line(&mut self, message: &str) {
        let text = format!(
            "{} drain-helper {}: {}\n",
            rfc3339_utc(SystemTime::now()),
            self.prefix,
            message
        );
        // One write call per line, so lines from concurrent writers do not interleave (pipes
        // keep writes up to PIPE_BUF bytes whole).
        let _ = match &mut self.sink {
            Some(file) => file.write_all(text.as_bytes()),
            None => io::stderr().lock().write_all(text.as_bytes()),
        };
    }
}

/// Formats `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-21T21:50:00.123Z`.
/// Times before 1970 are clamped to the epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z"); // leap day, 400-year rule
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_798_761_599, 5), "2026-12-31T23:59:59.005Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000Z"); // 2100 is no leap year
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn formats_the_example_from_the_docs() {
        // 2026-11-21T21:50:00.123Z
        assert_eq!(at(1_795_297_800, 123), "2026-11-21T21:50:00.123Z");
    }

    #[test]
    fn before_the_epoch_is_clamped() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(rfc3339_utc(before), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn civil_from_days_round_trips_month_boundaries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
    }
}
