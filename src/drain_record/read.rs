//! Reading a drain record back from a termination message (the observer's side).

use serde::Deserialize;

use super::{
    DrainRecord, EndReason, LINE_PREFIX, MAX_MESSAGE_BYTES, MAX_RECORD_BYTES, MAX_SECONDS_MILLIS,
    RecordRole, VERSION,
};

/// A termination message whose drain record cannot be read. Every variant names what was
/// wrong; the observer counts it (`drain_webhook_drain_records_malformed_total{reason}`) and
/// goes on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error(
        "termination message of {0} bytes is over the kubelet's {MAX_MESSAGE_BYTES}: not written by the kubelet"
    )]
    MessageTooLong(usize),
    #[error("drain record line of {0} bytes is over the {MAX_RECORD_BYTES} a record can take")]
    RecordTooLong(usize),
    #[error("drain record is not the expected JSON object: {0}")]
    Json(String),
    #[error("drain record version {0} is not the {VERSION} this webhook reads: upgrade it")]
    Version(u64),
    #[error("drain record field {field}: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
}

impl RecordError {
    /// A bounded label for the metric.
    pub fn reason(&self) -> &'static str {
        match self {
            RecordError::MessageTooLong(_) | RecordError::RecordTooLong(_) => "too-long",
            RecordError::Json(_) => "json",
            RecordError::Version(_) => "version",
            RecordError::Field { .. } => "field",
        }
    }

    pub const REASONS: [&'static str; 4] = ["too-long", "json", "version", "field"];
}

/// The record as it is on the wire: what JSON allows, checked afterwards.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    v: u64,
    role: String,
    floor: f64,
    end: f64,
    why: String,
    last_arrival: Option<f64>,
    after_floor: u64,
    migrated_at: Option<f64>,
    signal_at: Option<f64>,
    exit: u64,
}

/// The last drain record of a termination message: `Ok(None)` when no line is a record (the
/// user's own message, or a hook that ended before writing one). Lines before the record,
/// the user's text, are skipped; only the last record line counts (a container restarted in
/// place appends a second one).
pub fn parse_message(message: &str) -> Result<Option<DrainRecord>, RecordError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(RecordError::MessageTooLong(message.len()));
    }
    let Some(line) = message
        .lines()
        .map(str::trim)
        .rfind(|line| line.starts_with(LINE_PREFIX))
    else {
        return Ok(None);
    };
    if line.len() > MAX_RECORD_BYTES {
        return Err(RecordError::RecordTooLong(line.len()));
    }
    let wire: Wire =
        serde_json::from_str(line).map_err(|err| RecordError::Json(err.to_string()))?;
    if wire.v != VERSION {
        return Err(RecordError::Version(wire.v));
    }
    let role = RecordRole::parse(&wire.role)
        .ok_or_else(|| field("role", format!("{:?} is not proxy or app", wire.role)))?;
    let why = EndReason::ALL
        .into_iter()
        .find(|reason| reason.as_str() == wire.why)
        .ok_or_else(|| {
            field(
                "why",
                format!("{:?} is not quiet, cap, fixed or follow", wire.why),
            )
        })?;
    let exit = u8::try_from(wire.exit).map_err(|_| {
        field(
            "exit",
            format!("{} is not an exit status (0-255)", wire.exit),
        )
    })?;
    Ok(Some(DrainRecord {
        role,
        floor_ms: millis("floor", wire.floor)?,
        end_ms: millis("end", wire.end)?,
        why,
        last_arrival_ms: wire
            .last_arrival
            .map(|s| millis("lastArrival", s))
            .transpose()?,
        after_floor: wire.after_floor,
        migrated_at_ms: wire
            .migrated_at
            .map(|s| millis("migratedAt", s))
            .transpose()?,
        signal_at_ms: wire.signal_at.map(|s| millis("signalAt", s)).transpose()?,
        exit,
    }))
}

fn field(field: &'static str, problem: String) -> RecordError {
    RecordError::Field { field, problem }
}

/// Seconds to whole milliseconds, refusing what no hook can have taken.
fn millis(name: &'static str, seconds: f64) -> Result<u64, RecordError> {
    let max = MAX_SECONDS_MILLIS as f64 / 1000.0;
    if !(0.0..=max).contains(&seconds) {
        return Err(field(
            name,
            format!("{seconds} s is outside 0..={max} s after deletion"),
        ));
    }
    // In range and finite: the cast cannot saturate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((seconds * 1000.0).round() as u64)
}
