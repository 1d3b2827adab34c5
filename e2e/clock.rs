//! Wall-clock times as the pods' logs and the API server write them (RFC 3339, UTC), so the
//! report can line up the helper's lines, the proxy's lines, the pods' deletion and the load
//! client's stream ends. Written here rather than with a date crate: two conversions between
//! days and civil dates are all that is needed.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970, now.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `2025-03-01T12:00:05.123Z`: the format of the helper's log lines and of drain-e2e's own.
pub fn format_rfc3339_ms(unix: f64) -> String {
    let millis = (unix * 1000.0).round() as i64;
    let (secs, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Seconds since 1970 of an RFC 3339 UTC time with or without a fraction
/// (`2025-03-01T12:00:05Z`, `2025-03-01T12:00:05.123Z`). None for anything else, including
/// other time zones, which neither the API server nor the helper writes.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.split('-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    if date_parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) if fraction.bytes().all(|b| b.is_ascii_digit()) => {
            (clock, format!("0.{fraction}").parse::<f64>().ok()?)
        }
        Some(_) => return None,
        None => (time, 0.0),
    };
    let mut clock_parts = clock.split(':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: i64 = clock_parts.next()?.parse().ok()?;
    if clock_parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second) as f64 + fraction)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years
/// so that the leap day is the last day of a year).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        // `date -u -d 2025-03-01T12:00:05Z +%s`
        assert_eq!(parse_rfc3339("2025-03-01T12:00:05Z"), Some(1_740_830_405.0));
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59.5Z"),
            Some(1_709_251_199.5)
        );
        assert_eq!(
            format_rfc3339_ms(1_740_830_405.123),
            "2025-03-01T12:00:05.123Z"
        );
        assert_eq!(format_rfc3339_ms(0.0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn round_trips_over_leap_years_and_centuries() {
        for unix in [951_782_400.0, 4_107_542_399.25, 1_709_164_800.0, 86_399.999] {
            let text = format_rfc3339_ms(unix);
            let back = parse_rfc3339(&text).unwrap();
            assert!((back - unix).abs() < 0.0006, "{unix} -> {text} -> {back}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        for text in [
            "",
            "2025-03-01 12:00:05Z",
            "2025-03-01T12:00:05+01:00",
            "2025-13-01T12:00:05Z",
            "2025-03-01T12:00Z",
            "2025-03-01T12:00:05.x1Z",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }
}
