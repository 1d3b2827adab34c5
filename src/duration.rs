//! Durations as DESIGN.md accepts them: whole seconds (`"15"`) or Go-style (`"10s"`,
//! `"1m30s"`, `"1.5s"`), rounded up to whole seconds.

use std::fmt;

/// Longest duration accepted anywhere (one day): far above any sane grace period, and small
/// enough that sums of a few of them never overflow `u32`.
pub const MAX_SECONDS: u32 = 86_400;

/// Why a duration string was rejected. The caller adds which annotation or flag it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub &'static str);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Parses `"15"`, `"10s"`, `"1m30s"`, `"1h"`, `"500ms"`, `"2.5s"` into whole seconds, rounding
/// fractions up. Negative values, unknown units and values above [`MAX_SECONDS`] are errors.
pub fn parse_seconds(input: &str) -> Result<u32, DurationError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(DurationError("empty duration"));
    }
    if text.starts_with('-') {
        return Err(DurationError("negative durations are not allowed"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return whole_seconds(text);
    }
    // Go-style: one or more <number><unit> pairs, total kept in milliseconds.
    let mut total_millis: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(DurationError("a number needs a unit: s, m, h or ms"))?;
        if number_len == 0 {
            return Err(DurationError("expected a number before the unit"));
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let millis_per_unit: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(DurationError("unknown unit: use s, m, h or ms")),
        };
        total_millis = total_millis.saturating_add(scaled_millis(number, millis_per_unit)?);
        if total_millis > u128::from(MAX_SECONDS) * 1_000 {
            return Err(DurationError("longer than one day (86400s)"));
        }
        rest = next;
    }
    // Both bounds were checked above, so the conversion cannot fail.
    u32::try_from(total_millis.div_ceil(1_000)).map_err(|_| DurationError("too long"))
}

fn whole_seconds(digits: &str) -> Result<u32, DurationError> {
    match digits.parse::<u64>() {
        Ok(value) if value <= u64::from(MAX_SECONDS) => Ok(value as u32),
        _ => Err(DurationError("longer than one day (86400s)")),
    }
}

/// `number` (digits with at most one dot) times `millis_per_unit`, rounded up to a millisecond.
fn scaled_millis(number: &str, millis_per_unit: u128) -> Result<u128, DurationError> {
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return Err(DurationError("malformed number"));
    }
    if int_part.len() > 12 || frac_part.len() > 12 {
        return Err(DurationError("longer than one day (86400s)"));
    }
    let int_value: u128 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| DurationError("malformed number"))?
    };
    let mut millis = int_value * millis_per_unit;
    if !frac_part.is_empty() {
        let frac_value: u128 = frac_part
            .parse()
            .map_err(|_| DurationError("malformed number"))?;
        let scale = 10u128.pow(frac_part.len() as u32);
        millis += (frac_value * millis_per_unit).div_ceil(scale);
    }
    Ok(millis)
}

/// Renders whole seconds the way the helper's flags and the docs show them (`"15s"`).
pub fn format_seconds(seconds: u32) -> String {
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_seconds("15"), Ok(15));
        assert_eq!(parse_seconds("10s"), Ok(10));
        assert_eq!(parse_seconds("1m30s"), Ok(90));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds(" 0 "), Ok(0));
    }

    #[test]
    fn fractions_round_up() {
        assert_eq!(parse_seconds("1.5s"), Ok(2));
        assert_eq!(parse_seconds("500ms"), Ok(1));
        assert_eq!(parse_seconds("0.001s"), Ok(1));
        assert_eq!(parse_seconds("2000ms"), Ok(2));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "-5",
            "-1s",
            "10x",
            "s",
            "1.2.3s",
            "ten",
            "10 s",
            "1e3",
            "99999999999999999999",
            "25h",
            ".s",
        ] {
            assert!(parse_seconds(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
