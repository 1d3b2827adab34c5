//! Where a helper hook leaves its drain record (`--record PATH --role proxy|app`, issue 28):
//! the container's own termination message file, unless writing it would change the pod or
//! the helper could not take the path. docs/helper.md, "The drain record".

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::{ContainerPlan, Role};
use crate::drain_record::RecordRole;
use crate::helper::args::{RecordArgs, record_path_problem};
use crate::pod::{ContainerShape, DEFAULT_TERMINATION_MESSAGE_PATH, TERMINATION_MESSAGE_POLICIES};

/// core/v1 `TerminationMessageFallbackToLogsOnError`.
const FALLBACK_TO_LOGS_ON_ERROR: &str = TERMINATION_MESSAGE_POLICIES[1];

/// What the plan does about a helper hook's drain record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordPlan {
    /// `--record` this path: the container's `terminationMessagePath` (the default one is
    /// not copied).
    Path(Cow<'static, str>),
    /// No `--record`, and why.
    Skipped(String),
}

impl RecordPlan {
    /// The record of `container`'s helper hook. Validation (validateContainerCommon,
    /// pkg/apis/core/validation) checks only that `terminationMessagePolicy` is `File` or
    /// `FallbackToLogsOnError`; the path is any string, defaulted when empty. So every path the
    /// helper's parser would refuse ([`record_path_problem`]: relative, a NUL byte, longer than
    /// a path can be) is left out here, never written into a hook that would then fail.
    pub fn of(container: &ContainerShape) -> RecordPlan {
        if container.termination_message_policy.as_deref() == Some(FALLBACK_TO_LOGS_ON_ERROR) {
            // A non-empty file stops the kubelet from falling back to the log's tail when the
            // container fails: the record would change what the user sees.
            return RecordPlan::Skipped(
                "terminationMessagePolicy FallbackToLogsOnError (a record would replace the log tail the kubelet reports on failure)".into(),
            );
        }
        let path = match &container.termination_message_path {
            Some(path) if !path.is_empty() => path.clone(),
            _ => Cow::Borrowed(DEFAULT_TERMINATION_MESSAGE_PATH),
        };
        match record_path_problem(&path) {
            None => RecordPlan::Path(path),
            Some(problem) => {
                RecordPlan::Skipped(format!("terminationMessagePath {} {problem}", shown(&path)))
            }
        }
    }
}

/// The path as explain shows it: quoted, NUL bytes escaped, at most 64 characters.
fn shown(path: &str) -> String {
    let mut short: String = path.chars().take(64).collect();
    if short.len() < path.len() {
        short.push_str("...");
    }
    format!("{:?}", short)
}

/// As explain says it, among a container's details.
impl fmt::Display for RecordPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordPlan::Path(path) => write!(f, "drain record to {path}"),
            RecordPlan::Skipped(why) => write!(f, "no drain record: {why}"),
        }
    }
}

impl ContainerPlan {
    /// `--record` and `--role` of this container's helper hook, when it has a record.
    pub(super) fn record_args(&self) -> Option<RecordArgs> {
        let Some(RecordPlan::Path(path)) = &self.record else {
            return None;
        };
        let role = match self.role {
            Role::Proxy => RecordRole::Proxy,
            _ => RecordRole::App,
        };
        Some(RecordArgs {
            path: path.clone(),
            role,
        })
    }
}

#[cfg(test)]
mod tests;
