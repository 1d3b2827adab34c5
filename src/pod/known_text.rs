//! Text fields whose usual values are kept without a copy: the API server sets
//! `terminationMessagePath` and `terminationMessagePolicy` on every container and
//! `restartPolicy` on every pod (defaulting runs before admission), and a copy of each was an
//! allocation on every review. Any other value is kept as sent.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::Visitor;

/// The API's default `terminationMessagePath` (k8s.io/api core/v1
/// `TerminationMessagePathDefault`), set by defaulting before admission; a spec read offline
/// may still lack it.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// core/v1 `TerminationMessageReadFile` and `TerminationMessageFallbackToLogsOnError`, the
/// only policies validation accepts.
pub const TERMINATION_MESSAGE_POLICIES: [&str; 2] = ["File", "FallbackToLogsOnError"];

/// `terminationMessagePath`: a string or `null`.
pub(super) fn message_path<'de, D>(deserializer: D) -> Result<Option<Cow<'static, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_option(Known(&[DEFAULT_TERMINATION_MESSAGE_PATH]))
}

/// `terminationMessagePolicy`: a string or `null`.
pub(super) fn message_policy<'de, D>(deserializer: D) -> Result<Option<Cow<'static, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_option(Known(&TERMINATION_MESSAGE_POLICIES))
}

/// `restartPolicy` of a pod or of a container: a string or `null`.
pub(super) fn restart_policy<'de, D>(deserializer: D) -> Result<Option<Cow<'static, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_option(Known(&["Always", "OnFailure", "Never"]))
}

/// Reads a string or `null`, borrowing the static copy of a known value.
struct Known(&'static [&'static str]);

impl<'de> Visitor<'de> for Known {
    type Value = Option<Cow<'static, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(match self.0.iter().find(|known| **known == text) {
            Some(known) => Cow::Borrowed(known),
            None => Cow::Owned(text.to_owned()),
        }))
    }
}
