//! The drain record (`--record PATH --role proxy|app`): what the phases saw, built into a
//! [`DrainRecord`] (pure) and appended to the container's termination message file (thin I/O
//! that never fails the hook). docs/helper.md, "The drain record".

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::drain_record::{
    DrainRecord, EndReason, MAX_MESSAGE_BYTES, MAX_SECONDS_MILLIS, RecordRole,
};

/// What the phases saw, filled in as they run. Times in ms after the hook's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// When the delay, the hold or the follow ended, and why; `None` when `--max` cut the hook
    /// before (or while) it did.
    pub ended: Option<(u64, EndReason)>,
    /// The latest sample of the adaptive hold that saw traffic.
    pub last_arrival_ms: Option<u64>,
    /// Traffic the adaptive hold saw after the floor.
    pub after_floor: u64,
    /// When the migration went (`--migrate`, successful only).
    pub migrated_at_ms: Option<u64>,
    /// When the graceful signal went (`--signal`, successful only).
    pub signal_at_ms: Option<u64>,
}

impl Outcome {
    /// The record of a hook of `role` with the floor `floor_s` that exited with `exit` at
    /// `now_ms`. A hold cut by `--max` ended then, at a bound: `cap`. Times over a day (no
    /// hook runs that long: `--max` is at most 86,400 s) are kept at a day, which the
    /// observer's parser still takes; exit codes outside 0-255 become 255.
    pub fn record(&self, role: RecordRole, floor_s: u32, exit: i32, now_ms: u64) -> DrainRecord {
        let at_most_a_day = |ms: u64| ms.min(MAX_SECONDS_MILLIS);
        let (end_ms, why) = self.ended.unwrap_or((now_ms, EndReason::Cap));
        DrainRecord {
            role,
            floor_ms: at_most_a_day(u64::from(floor_s) * 1000),
            end_ms: at_most_a_day(end_ms),
            why,
            last_arrival_ms: self.last_arrival_ms.map(at_most_a_day),
            after_floor: self.after_floor,
            migrated_at_ms: self.migrated_at_ms.map(at_most_a_day),
            signal_at_ms: self.signal_at_ms.map(at_most_a_day),
            exit: u8::try_from(exit).unwrap_or(u8::MAX),
        }
    }
}

/// Appends `line` to the file at `path`: created if missing (its folder never), never
/// truncated, and only when the file stays within the [`MAX_MESSAGE_BYTES`] the kubelet
/// keeps, so that the container's own message before it is not cut. The record starts a line
/// of its own (the reader finds it by the line's start): after a message that does not end
/// with a newline, one is written first. `O_NONBLOCK`: a FIFO without a reader is an error,
/// not a hook that hangs. The error says why, for one log line.
pub fn append(path: &Path, line: &str) -> Result<(), String> {
    let open = |read: bool| {
        OpenOptions::new()
            .read(read)
            .append(true)
            .create(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
    };
    // Read access only tells how the message ends; a file the hook may only write to gets a
    // newline before the record whenever it is not empty.
    let (mut file, readable) = match open(true) {
        Ok(file) => (file, true),
        Err(_) => (
            open(false).map_err(|err| format!("cannot open it: {err}"))?,
            false,
        ),
    };
    let metadata = file
        .metadata()
        .map_err(|err| format!("cannot read its size: {err}"))?;
    if !metadata.is_file() {
        return Err("it is not a regular file".into());
    }
    let had = metadata.len();
    let mut last = [b'\n'];
    if had > 0 && (!readable || file.read_at(&mut last, had - 1).is_err()) {
        last[0] = 0;
    }
    let text = match last[0] {
        b'\n' => line.to_owned(),
        _ => format!("\n{line}"),
    };
    if had.saturating_add(text.len() as u64) > MAX_MESSAGE_BYTES as u64 {
        return Err(format!(
            "it has {had} bytes already, and with the record's {} it would pass the {MAX_MESSAGE_BYTES} bytes the kubelet keeps, cutting the start of the container's own message",
            text.len()
        ));
    }
    file.write_all(text.as_bytes())
        .map_err(|err| format!("cannot write to it: {err}"))
}

#[cfg(test)]
mod tests;
