//! `--record PATH --role proxy|app`: where the hook appends its drain record (the container's
//! termination message file) and which container it describes. docs/helper.md, "The drain
//! record".

use std::borrow::Cow;

use super::{UsageError, usage};
use crate::drain_record::RecordRole;

/// The longest `--record` path: Linux's `PATH_MAX` less its terminating NUL. A longer one
/// could never be opened, and an argument far longer would not even reach the helper
/// (`execve` refuses a single argument over 128 KiB).
pub const MAX_RECORD_PATH_BYTES: usize = 4095;

/// Where the drain record goes, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordArgs {
    /// `--record`: an absolute path, appended to (created if missing, its folder never).
    /// Borrowed when the planner writes the default path, so planning copies it for no hook.
    pub path: Cow<'static, str>,
    /// `--role`.
    pub role: RecordRole,
}

/// Why a path cannot be a `--record` target, if it cannot: the planner leaves `--record` out
/// for such a `terminationMessagePath` (the API server accepts any string there) rather than
/// write a hook the helper refuses.
pub fn record_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        Some("is not an absolute path".into())
    } else if path.contains('\0') {
        Some("contains a NUL byte, which no command-line argument can carry".into())
    } else if path.len() > MAX_RECORD_PATH_BYTES {
        Some(format!(
            "is {} bytes long, over the {MAX_RECORD_PATH_BYTES} a path can have",
            path.len()
        ))
    } else {
        None
    }
}

/// `--record PATH`.
pub(super) fn path(flag: &str, value: &str) -> Result<String, UsageError> {
    match record_path_problem(value) {
        Some(problem) => Err(usage(format!(
            "{flag} \"{value}\" {problem}: give the container's terminationMessagePath"
        ))),
        None => Ok(value.to_owned()),
    }
}

/// `--role proxy|app`.
pub(super) fn role(flag: &str, value: &str) -> Result<RecordRole, UsageError> {
    RecordRole::parse(value).ok_or_else(|| usage(format!("{flag} \"{value}\" is not proxy or app")))
}

/// Both flags or neither: a record must say whose drain it is, and a role alone says nothing.
pub(super) fn record_args(
    path: Option<String>,
    role: Option<RecordRole>,
) -> Result<Option<RecordArgs>, UsageError> {
    match (path, role) {
        (Some(path), Some(role)) => Ok(Some(RecordArgs {
            path: path.into(),
            role,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(usage(
            "--record needs --role proxy|app: the record says which container drained",
        )),
        (None, Some(_)) => Err(usage(
            "--role describes the drain record: give --record PATH with it",
        )),
    }
}
