//! What the running webhook serves for other tools (`drain-webhook check`) on its HTTPS
//! listener, defined here, below both the server and check: the paths, and the body of
//! `GET /settings`.
//!
//! `GET /settings`: the global planning settings this server runs with
//! (its flags or the chart's `settings`), so that `drain-webhook check` describes the delivery
//! the server is actually configured for and can tell a namespace whose settings plan nothing
//! from a webhook that was never called. Read through the API server's service proxy, like
//! `GET /certificate`. Nothing secret: durations, modes and the version the planner assumes.

use serde::{Deserialize, Serialize};

use crate::settings::{HelperDelivery, HookMode, KubeVersion, Settings};

/// Where the HTTPS listener shows its settings.
pub const SETTINGS_PATH: &str = "/settings";

/// Where the HTTPS listener shows the certificate chain it serves.
pub const CERTIFICATE_PATH: &str = "/certificate";

/// What `GET /settings` answers (JSON, camelCase). Fields a later version adds are ignored by
/// an older check; fields an older server lacks read as their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServedSettings {
    /// `--helper-delivery`: auto, first-container, init-container, image-volume.
    pub helper_delivery: String,
    /// `--hook-mode`: auto, sleep, helper, native.
    pub hook_mode: String,
    /// The version the planner uses (`--kube-version`, else the API server's); `None`: unknown.
    pub kube_version: Option<String>,
    /// D, S, B, Q and M in seconds.
    pub delay: u32,
    pub stagger: u32,
    pub shutdown_budget: u32,
    pub quiet: u32,
    pub max_delay: u32,
    /// `--profile`: the profile of pods that name none.
    pub profile: Option<String>,
}

impl Default for ServedSettings {
    fn default() -> Self {
        Self::of(&Settings::default(), None)
    }
}

impl ServedSettings {
    pub fn of(settings: &Settings, kube_version: Option<KubeVersion>) -> Self {
        Self {
            helper_delivery: settings.helper.delivery.to_string(),
            hook_mode: settings.hook_mode.to_string(),
            kube_version: kube_version.map(|v| v.to_string()),
            delay: settings.delay,
            stagger: settings.stagger,
            shutdown_budget: settings.shutdown_budget,
            quiet: settings.quiet,
            max_delay: settings.max_delay,
            profile: settings.profile.map(|p| p.name.to_owned()),
        }
    }

    /// The server's `--helper-delivery`, or what it sent unread.
    pub fn helper_delivery(&self) -> Result<HelperDelivery, String> {
        self.helper_delivery
            .parse()
            .map_err(|_| format!("unknown helper delivery {:?}", self.helper_delivery))
    }

    pub fn kube_version(&self) -> Option<KubeVersion> {
        self.kube_version.as_deref().and_then(|v| v.parse().ok())
    }

    /// Settings that plan as the server does, as far as it says: what it does not send (the
    /// proxy images, a `--profiles-file` profile, the helper's image and resources) stays at
    /// the default.
    pub fn planning_settings(&self) -> Settings {
        let defaults = Settings::default();
        let mut settings = Settings {
            delay: self.delay,
            stagger: self.stagger,
            shutdown_budget: self.shutdown_budget,
            quiet: self.quiet,
            max_delay: self.max_delay,
            hook_mode: self
                .hook_mode
                .parse::<HookMode>()
                .unwrap_or(defaults.hook_mode),
            ..defaults
        };
        settings.helper.delivery = self.helper_delivery().unwrap_or_default();
        settings.profile = self
            .profile
            .as_deref()
            .and_then(|name| settings.profiles.find(name));
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_read_back_as_the_server_plans() {
        let mut settings = Settings {
            delay: 0,
            stagger: 7,
            ..Settings::default()
        };
        settings.helper.delivery = HelperDelivery::InitContainer;
        settings.hook_mode = HookMode::Helper;
        let served = ServedSettings::of(&settings, "1.35".parse().ok());
        let json = serde_json::to_value(&served).unwrap();
        assert_eq!(json["helperDelivery"], "init-container");
        assert_eq!(json["kubeVersion"], "1.35");
        assert_eq!(json["delay"], 0);
        let read: ServedSettings = serde_json::from_value(json).unwrap();
        assert_eq!(read, served);
        assert_eq!(read.helper_delivery(), Ok(HelperDelivery::InitContainer));
        let planning = read.planning_settings();
        assert_eq!(
            (planning.delay, planning.stagger, planning.hook_mode),
            (0, 7, HookMode::Helper)
        );
        assert_eq!(planning.helper.delivery, HelperDelivery::InitContainer);
        // An older or newer server: missing fields default, unknown ones are ignored.
        let partial: ServedSettings =
            serde_json::from_str(r#"{"helperDelivery":"first-container","future":1}"#).unwrap();
        assert_eq!(partial.delay, Settings::default().delay);
        assert_eq!(
            partial.helper_delivery(),
            Ok(HelperDelivery::FirstContainer)
        );
        assert!(
            ServedSettings {
                helper_delivery: "teleport".into(),
                ..ServedSettings::default()
            }
            .helper_delivery()
            .is_err()
        );
    }
}
