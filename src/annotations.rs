//! The `drain.io/*` annotations: their keys, how values parse, and the precedence pod
//! annotation, then namespace annotation (global settings come last, in the planner).

use std::collections::BTreeMap;
use std::fmt;

use crate::duration::parse_seconds;
use crate::helper::net::{HttpUrl, parse_port};
use crate::pod::is_dns_label;
use crate::profiles::{Catalogue, Profile};
use crate::settings::{HelperDelivery, HookMode};

pub const INJECT: &str = "drain.io/inject";
pub const DELAY: &str = "drain.io/delay";
pub const STAGGER: &str = "drain.io/stagger";
pub const SHUTDOWN_BUDGET: &str = "drain.io/shutdown-budget";
/// Q of the adaptive hold: released once no new connection and no request arrived for this long.
pub const QUIET: &str = "drain.io/quiet";
/// M of the adaptive hold: its cap; at or below D the hold is the fixed D.
pub const MAX_DELAY: &str = "drain.io/max-delay";
pub const PROXIES: &str = "drain.io/proxies";
pub const EXCLUDE: &str = "drain.io/exclude";
pub const HOOK: &str = "drain.io/hook";
pub const NOTIFY: &str = "drain.io/notify";
pub const WAIT_IDLE: &str = "drain.io/wait-idle";
/// `image`: the user vouches that the image's own STOPSIGNAL is graceful (official nginx).
pub const GRACEFUL_STOP: &str = "drain.io/graceful-stop";
/// A named traffic path (`src/profiles.rs`): floors for D and B.
pub const PROFILE: &str = "drain.io/profile";
/// `"true"`: planned containers get `DRAIN_DELAY_SECONDS` and `DRAIN_SHUTDOWN_BUDGET_SECONDS`.
pub const ENV: &str = "drain.io/env";
/// How pinned clients are moved off at the floor: `auto`, `none`, a signal, or a loopback URL
/// to POST (docs/helper.md, "Moving pinned clients").
pub const MIGRATE: &str = "drain.io/migrate";
/// How the helper reaches the pod: `auto`, `first-container`, `init-container` or
/// `image-volume` (over `--helper-delivery`; `src/plan/delivery.rs`).
pub const DELIVERY: &str = "drain.io/delivery";
/// Written by the webhook: the plan it applied, compact JSON.
pub const STATUS: &str = "drain.io/status";

/// Marks a mirror pod (the API-server copy of a static pod); those are never mutated.
pub const MIRROR_POD: &str = "kubernetes.io/config.mirror";

/// A `drain.io/*` value the webhook refuses; the message names the annotation, where it was
/// set, why, and a valid example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "annotation {key}={value:?} ({origin}) is invalid: {reason}; use for example {key}: {example}"
)]
pub struct AnnotationError {
    pub key: &'static str,
    pub value: String,
    pub origin: Source,
    pub reason: String,
    pub example: &'static str,
}

/// Where an annotation value came from; error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Pod,
    Namespace,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Pod => "on the pod",
            Source::Namespace => "on the namespace",
        })
    }
}

/// A parsed value, with the annotation it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub key: &'static str,
    pub raw: String,
    pub source: Source,
}

/// Everything the annotations ask for. `None` means "not set": fall back to the next source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub opted_out: Option<Source>,
    pub delay: Option<Sourced<u32>>,
    pub stagger: Option<Sourced<u32>>,
    pub shutdown_budget: Option<Sourced<u32>>,
    pub quiet: Option<Sourced<u32>>,
    pub max_delay: Option<Sourced<u32>>,
    pub proxies: Option<Sourced<Vec<String>>>,
    pub exclude: Option<Sourced<Vec<String>>>,
    pub hook: Option<Sourced<HookMode>>,
    pub notify: Option<Sourced<Vec<HttpUrl>>>,
    pub wait_idle: Option<Sourced<Vec<u16>>>,
    /// `drain.io/graceful-stop: image`: proxies keep their image's stop signal.
    pub graceful_stop: Option<Sourced<()>>,
    pub profile: Option<Sourced<&'static Profile>>,
    /// `drain.io/env`: whether planned containers get the plan's timings as env vars.
    pub env: Option<Sourced<bool>>,
    /// `drain.io/delivery`: how the helper reaches the pod.
    pub delivery: Option<Sourced<HelperDelivery>>,
    /// `drain.io/migrate`: how pinned clients are moved off at the floor.
    pub migrate: Option<Sourced<MigrateSetting>>,
}

/// What `drain.io/migrate` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateSetting {
    /// Front proxies known to move their connections off without closing their listeners get
    /// their mechanism (nginx, openresty: SIGHUP); nothing else.
    Auto,
    /// Nothing migrates: pinned clients keep the hold toward M.
    None,
    /// This signal (its number) to the front proxies, or to the apps holding alone when the
    /// pod has none.
    Signal(i32),
    /// A POST to this loopback URL, once per pod.
    Post(HttpUrl),
}

/// Signals that stop a process rather than make it move its connections: sent at the floor,
/// they would end the drain early.
const STOPPING_SIGNALS: [&str; 5] = ["SIGKILL", "SIGSTOP", "SIGTERM", "SIGINT", "SIGQUIT"];

fn migrate_setting(value: &str) -> Result<MigrateSetting, String> {
    let value = value.trim();
    match value {
        "auto" => return Ok(MigrateSetting::Auto),
        "none" => return Ok(MigrateSetting::None),
        _ => {}
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        return notify_url(value).map(MigrateSetting::Post);
    }
    let number = crate::helper::signal::parse_signal(value).map_err(|reason| {
        format!("expected auto, none, a signal or http://127.0.0.1:PORT/PATH ({reason})")
    })?;
    let name = crate::helper::signal::signal_name(number);
    if STOPPING_SIGNALS.contains(&name.as_str()) {
        return Err(format!(
            "{name} stops the process instead of moving its clients off while it keeps serving"
        ));
    }
    Ok(MigrateSetting::Signal(number))
}

const DURATION_EXAMPLE: &str = "\"15\" or \"10s\" or \"1m30s\"";

impl Overrides {
    /// Reads the pod's annotations, then the namespace's for keys the pod does not set. The
    /// first invalid value is an error naming the annotation, the value and a valid example.
    pub fn resolve(
        pod: Option<&BTreeMap<String, String>>,
        namespace: Option<&BTreeMap<String, String>>,
        profiles: Catalogue,
    ) -> Result<Self, AnnotationError> {
        let annotations = Annotations { pod, namespace };
        let mut overrides = Overrides::default();

        // `true` when the value opts out.
        let inject = annotations.read(INJECT, "\"false\"", |v| match v.trim() {
            "false" | "true" | "enabled" | "disabled" => Ok(is_opt_out(v)),
            _ => Err("expected \"false\" to opt out, or \"true\"".into()),
        })?;
        if let Some(inject) = inject
            && inject.value
        {
            overrides.opted_out = Some(inject.source);
            // An opted-out pod is left alone, whatever its other annotations say.
            return Ok(overrides);
        }

        let duration = |key| {
            annotations.read(key, DURATION_EXAMPLE, |v| {
                parse_seconds(v).map_err(|e| e.to_string())
            })
        };
        overrides.delay = duration(DELAY)?;
        overrides.stagger = duration(STAGGER)?;
        overrides.shutdown_budget = duration(SHUTDOWN_BUDGET)?;
        overrides.quiet = annotations.read(QUIET, "\"3s\" or \"5\"", |v| {
            match parse_seconds(v).map_err(|e| e.to_string())? {
                0 => Err("the quiet window must be at least 1s".into()),
                seconds => Ok(seconds),
            }
        })?;
        overrides.max_delay = duration(MAX_DELAY)?;

        let names = |key| {
            annotations.read(key, "\"nginx,envoy\"", |v| {
                split_list(v)
                    .map(|name| {
                        if is_dns_label(name) {
                            Ok(name.to_owned())
                        } else {
                            Err(format!("{name:?} is not a valid container name"))
                        }
                    })
                    .collect()
            })
        };
        overrides.proxies = names(PROXIES)?;
        overrides.exclude = names(EXCLUDE)?;

        overrides.hook =
            annotations.read(HOOK, "\"auto\", \"sleep\", \"helper\" or \"native\"", |v| {
                v.parse::<HookMode>().map_err(str::to_owned)
            })?;

        overrides.notify = annotations.read(NOTIFY, "\"http://127.0.0.1:8080/drain\"", |v| {
            let urls = split_list(v)
                .map(notify_url)
                .collect::<Result<Vec<_>, _>>()?;
            if urls.is_empty() {
                return Err("no URL given".into());
            }
            Ok(urls)
        })?;

        overrides.wait_idle =
            annotations.read(WAIT_IDLE, "\"8080\" or \"8080,8443\"", parse_ports)?;

        overrides.graceful_stop =
            annotations.read(GRACEFUL_STOP, "\"image\"", |v| match v.trim() {
                "image" => Ok(()),
                _ => Err(
                    "the only value is \"image\" (the image's own STOPSIGNAL is graceful)".into(),
                ),
            })?;

        overrides.profile = annotations.read(PROFILE, "\"aws-nlb\"", |v| {
            profiles.find(v.trim()).ok_or_else(|| {
                format!(
                    "no such profile; the known ones are {}",
                    profiles.known_names()
                )
            })
        })?;

        overrides.env = annotations.read(ENV, "\"true\"", |v| match v.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected \"true\" or \"false\"".into()),
        })?;

        overrides.migrate = annotations.read(
            MIGRATE,
            "\"SIGHUP\", \"none\" or \"http://127.0.0.1:8080/drain-keepalive\"",
            migrate_setting,
        )?;

        overrides.delivery = annotations.read(
            DELIVERY,
            "\"auto\", \"first-container\", \"init-container\" or \"image-volume\"",
            |v| v.parse::<HelperDelivery>().map_err(str::to_owned),
        )?;

        Ok(overrides)
    }
}

/// The pod's and the namespace's annotations, read with the pod's first.
struct Annotations<'a> {
    pod: Option<&'a BTreeMap<String, String>>,
    namespace: Option<&'a BTreeMap<String, String>>,
}

impl Annotations<'_> {
    /// The value of `key` as `parse` reads it, with where it came from; an invalid value is an
    /// error naming the annotation, the value and a valid example.
    fn read<T>(
        &self,
        key: &'static str,
        example: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<Sourced<T>>, AnnotationError> {
        let found = (self
            .pod
            .and_then(|a| a.get(key))
            .map(|raw| (raw, Source::Pod)))
        .or_else(|| (self.namespace.and_then(|a| a.get(key))).map(|raw| (raw, Source::Namespace)));
        let Some((raw, source)) = found else {
            return Ok(None);
        };
        match parse(raw) {
            Ok(value) => Ok(Some(Sourced {
                value,
                key,
                raw: raw.clone(),
                source,
            })),
            Err(reason) => Err(AnnotationError {
                key,
                value: raw.clone(),
                reason,
                example,
                origin: source,
            }),
        }
    }
}

/// A `drain.io/inject` value that opts out.
pub fn is_opt_out(value: &str) -> bool {
    matches!(value.trim(), "false" | "disabled")
}

/// Items of a comma list, trimmed, empty ones dropped.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Ports by drain-helper's own rule (plain digits, 1-65535: `u16::from_str` would take "+80").
fn parse_ports(value: &str) -> Result<Vec<u16>, String> {
    let ports: Vec<u16> = split_list(value)
        .map(|p| parse_port(p).ok_or_else(|| format!("{p:?} is not a port number (1-65535)")))
        .collect::<Result<_, _>>()?;
    if ports.is_empty() {
        return Err("no port given".into());
    }
    Ok(ports)
}

/// A notify URL as drain-helper parses it (its own rules: `http://`, IP literal, port 1-65535 in
/// plain digits, no fragment, no spaces), and on the pod's loopback: the URL is called from
/// inside the pod, and anything else would leave it.
fn notify_url(url: &str) -> Result<HttpUrl, String> {
    let parsed = HttpUrl::parse(url).map_err(|reason| format!("{url:?}: {reason}"))?;
    if !parsed.addr.ip().is_loopback() {
        return Err(format!("{url:?} must target 127.0.0.1:PORT or [::1]:PORT"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests;
