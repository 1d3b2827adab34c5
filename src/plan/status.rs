//! The `drain.io/status` record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::HelperInjection;

/// What the webhook records in `drain.io/status`: enough to make a second run a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Status {
    /// Format version.
    pub v: u32,
    /// The grace period before the first run (`null`: unset), so B stays the user's.
    #[serde(rename = "graceBefore")]
    pub grace_before: Option<i64>,
    pub grace: i64,
    /// Planned containers: name -> "role:hook:preStopSeconds".
    pub containers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<HelperInjection>,
    /// Containers left as they were: name -> role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub untouched: BTreeMap<String, String>,
}

impl Status {
    pub const VERSION: u32 = 1;

    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str::<Status>(raw)
            .ok()
            .filter(|s| s.v == Self::VERSION)
    }
}
