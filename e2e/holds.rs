//! `drain-e2e holds DIR --pods FILE`: each terminated demo pod's hold and stop signal, from
//! the lines its proxy container logged (the drain-helper's, written to the container's PID 1
//! stderr, and the demo proxy's own), and from when the API server says it was deleted.
//!
//! The helper's lines (`<RFC 3339 UTC> drain-helper prestop: <message>`) read here:
//! - the first line of the hook, whichever it is: the hook's start (the kubelet runs preStop
//!   at the deletion);
//! - `hold ended after 16.2s: quiet for 3s` (also `...: cap 60s reached ...`, `...: fixed (...)`):
//!   when and why the hold ended;
//! - `still receiving: 37 new connections in the last 3s`: traffic seen during the hold;
//! - `sent SIGQUIT to PID 1; waiting until ...`: the signal phase.
//!
//! The demo proxy's line `drain-e2e proxy: SIGQUIT, graceful ...` (or `SIGTERM, fast ...`)
//! is when the proxy got its stop signal, whoever sent it (the helper, or the kubelet when
//! the pod has no helper), so pods with and without drain-webhook are measured alike. Its
//! `drain-e2e proxy: SIGHUP, moving ...` is when its clients were moved off (not a stop).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::clock::parse_rfc3339;

/// What one terminated pod's logs and deletion say.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodHold {
    pub pod: String,
    /// When the pod was deleted (API server: deletionTimestamp minus the grace period; whole
    /// seconds).
    pub deleted_unix: Option<f64>,
    /// When the grace period ran out (SIGKILL for whatever was left): deletionTimestamp.
    pub kill_unix: Option<f64>,
    /// The helper's first line.
    pub hook_start_unix: Option<f64>,
    /// Seconds from the hook's start to the end of the hold, and why it ended
    /// (`quiet`, `cap` or `fixed`), with the rest of the line.
    pub hold_end_seconds: Option<f64>,
    pub hold_reason: Option<String>,
    pub hold_detail: Option<String>,
    /// `still receiving` lines during the hold.
    pub still_receiving: u32,
    /// The signal the helper sent, and when.
    pub helper_signal: Option<String>,
    pub helper_signal_unix: Option<f64>,
    /// The stop signal the proxy logged receiving, and when.
    pub proxy_signal: Option<String>,
    pub proxy_signal_unix: Option<f64>,
    /// When the proxy first logged SIGHUP (it moved its clients off and kept serving). Absent
    /// from results.json when it never did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_moved_unix: Option<f64>,
}

impl PodHold {
    /// When the pod's shutdown began: the helper's first line when there is one (milliseconds),
    /// else the API server's deletion time (whole seconds).
    pub fn start_unix(&self) -> Option<f64> {
        self.hook_start_unix.or(self.deleted_unix)
    }

    /// Seconds from the deletion to the proxy's stop signal.
    pub fn signal_after_deletion(&self) -> Option<f64> {
        let signal = self.proxy_signal_unix.or(self.helper_signal_unix)?;
        Some(signal - self.start_unix()?)
    }

    /// Seconds from the deletion to the proxy's SIGHUP (its clients moved off), if it got one.
    pub fn moved_after_deletion(&self) -> Option<f64> {
        Some(self.proxy_moved_unix? - self.start_unix()?)
    }

    /// Whether the pod was seen terminating at all (pods still running are not reported).
    fn terminated(&self) -> bool {
        self.deleted_unix.is_some()
            || self.hook_start_unix.is_some()
            || self.proxy_signal_unix.is_some()
    }
}

/// Reads the log lines of one proxy container into `hold`.
pub fn read_log(hold: &mut PodHold, text: &str) {
    for line in text.lines() {
        let Some((stamp, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some(at) = parse_rfc3339(stamp) else {
            continue;
        };
        if let Some(message) = rest.strip_prefix("drain-helper prestop: ") {
            read_helper_line(hold, at, message);
        } else if let Some(message) = rest.strip_prefix("drain-e2e proxy: ") {
            let signal = message.split(',').next().unwrap_or_default();
            // SIGHUP moves the clients off (a reload) and leaves the proxy serving: not a stop.
            if signal == "SIGHUP" {
                hold.proxy_moved_unix.get_or_insert(at);
            } else if hold.proxy_signal.is_none() && signal.starts_with("SIG") && signal.len() <= 8
            {
                hold.proxy_signal = Some(signal.to_string());
                hold.proxy_signal_unix = Some(at);
            }
        }
    }
}

fn read_helper_line(hold: &mut PodHold, at: f64, message: &str) {
    hold.hook_start_unix.get_or_insert(at);
    if let Some(rest) = message.strip_prefix("hold ended after ") {
        let Some((seconds, why)) = rest.split_once("s: ") else {
            return;
        };
        let Ok(seconds) = seconds.parse::<f64>() else {
            return;
        };
        let reason = why.split([' ', '(']).next().unwrap_or_default();
        if matches!(reason, "quiet" | "cap" | "fixed") {
            hold.hold_end_seconds = Some(seconds);
            hold.hold_reason = Some(reason.to_string());
            hold.hold_detail = Some(why.to_string());
        }
    } else if message.starts_with("still receiving: ") {
        hold.still_receiving += 1;
    } else if let Some((signal, _)) = message
        .strip_prefix("sent ")
        .and_then(|rest| rest.split_once(" to PID "))
    {
        hold.helper_signal.get_or_insert_with(|| signal.to_string());
        hold.helper_signal_unix.get_or_insert(at);
    }
}

/// One line of the pods' watch, as scripts/e2e.sh writes it with jq.
#[derive(Debug, Deserialize)]
struct Deletion {
    pod: String,
    deletion_timestamp: Option<String>,
    grace_seconds: Option<f64>,
}

/// Reads the watch's lines into the holds (the first line with a deletion time counts; the
/// watch repeats the pod on every later change).
pub fn read_deletions(holds: &mut BTreeMap<String, PodHold>, text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(deletion) = serde_json::from_str::<Deletion>(line) else {
            continue;
        };
        let Some(kill) = deletion
            .deletion_timestamp
            .as_deref()
            .and_then(parse_rfc3339)
        else {
            continue;
        };
        let hold = holds
            .entry(deletion.pod.clone())
            .or_insert_with(|| PodHold {
                pod: deletion.pod.clone(),
                ..PodHold::default()
            });
        if hold.kill_unix.is_none() {
            hold.kill_unix = Some(kill);
            hold.deleted_unix = Some(kill - deletion.grace_seconds.unwrap_or(0.0));
        }
    }
}

/// The holds of the pods whose logs are in `dir` (one `POD.log` each) and whose deletions are
/// in `pods`, terminated pods only, by pod name.
pub fn collect(dir: &Path, pods: Option<&str>) -> anyhow::Result<Vec<PodHold>> {
    let mut holds: BTreeMap<String, PodHold> = BTreeMap::new();
    if let Some(pods) = pods {
        read_deletions(&mut holds, pods);
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(pod) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let hold = holds.entry(pod.to_string()).or_insert_with(|| PodHold {
            pod: pod.to_string(),
            ..PodHold::default()
        });
        read_log(hold, &text);
    }
    Ok(holds.into_values().filter(PodHold::terminated).collect())
}

pub fn run(dir: &Path, pods: Option<&Path>) -> anyhow::Result<ExitCode> {
    let pods = match pods {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        ),
        None => None,
    };
    let holds = collect(dir, pods.as_deref())?;
    println!("{}", serde_json::to_string(&holds)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy container's log as `kubectl logs` shows it: the proxy's lines and the helper's,
    /// in the format the helper writes (issue 20).
    const ADAPTIVE: &str = "\
2025-03-01T12:00:00.100Z drain-e2e proxy: listening on 0.0.0.0:8080, upstream 127.0.0.1:8081
2025-03-01T12:01:00.250Z drain-helper prestop: hold: at least 10s, until quiet for 3s, at most 60s
2025-03-01T12:01:03.250Z drain-helper prestop: still receiving: 37 new connections in the last 3s
2025-03-01T12:01:06.250Z drain-helper prestop: still receiving: 12 new connections in the last 3s
2025-03-01T12:01:16.450Z drain-helper prestop: hold ended after 16.2s: quiet for 3s
2025-03-01T12:01:16.460Z drain-helper prestop: PID 1 listens on port(s) 8080; holding 1 connection(s)
2025-03-01T12:01:16.470Z drain-helper prestop: sent SIGQUIT to PID 1; waiting until its listeners close and their connections are done
2025-03-01T12:01:16.471Z drain-e2e proxy: SIGQUIT, graceful: no longer accepting, finishing 4 connections
garbage without a time
2025-03-01T12:01:17.000Z drain-helper prestop: no connections left on port(s) 8080 after 0.5s: PID 1 has drained
";

    #[test]
    fn an_adaptive_hold() {
        let mut hold = PodHold::default();
        read_log(&mut hold, ADAPTIVE);
        assert_eq!(hold.hold_end_seconds, Some(16.2));
        assert_eq!(hold.hold_reason.as_deref(), Some("quiet"));
        assert_eq!(hold.hold_detail.as_deref(), Some("quiet for 3s"));
        assert_eq!(hold.still_receiving, 2);
        assert_eq!(hold.helper_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(hold.proxy_signal.as_deref(), Some("SIGQUIT"));
        let start = parse_rfc3339("2025-03-01T12:01:00.250Z").unwrap();
        assert_eq!(hold.hook_start_unix, Some(start));
        let after = hold.signal_after_deletion().unwrap();
        assert!((after - 16.221).abs() < 1e-6, "{after}");
    }

    #[test]
    fn a_sighup_moves_clients_and_is_not_the_stop_signal() {
        let mut hold = PodHold::default();
        read_log(
            &mut hold,
            "2025-03-01T12:01:10.000Z drain-e2e proxy: SIGHUP, moving 5 connections off and still accepting\n\
             2025-03-01T12:01:12.000Z drain-e2e proxy: SIGHUP, moving 1 connections off and still accepting\n\
             2025-03-01T12:01:20.000Z drain-e2e proxy: SIGQUIT, graceful: no longer accepting, finishing 2 connections\n",
        );
        assert_eq!(hold.proxy_moved_unix, parse_rfc3339("2025-03-01T12:01:10Z"));
        assert_eq!(hold.proxy_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(
            hold.proxy_signal_unix,
            parse_rfc3339("2025-03-01T12:01:20Z")
        );
        hold.hook_start_unix = parse_rfc3339("2025-03-01T12:01:00Z");
        assert_eq!(hold.moved_after_deletion(), Some(10.0));
        assert_eq!(hold.signal_after_deletion(), Some(20.0));
        let json = serde_json::to_value(&hold).unwrap();
        assert!(json.get("proxy_moved_unix").is_some(), "{json}");
        let json = serde_json::to_value(PodHold::default()).unwrap();
        assert!(json.get("proxy_moved_unix").is_none(), "{json}");
    }

    #[test]
    fn cap_and_fixed_holds() {
        for (line, seconds, reason) in [
            (
                "hold ended after 60.0s: cap 60s reached with traffic still arriving",
                60.0,
                "cap",
            ),
            (
                "hold ended after 10.0s: fixed (cannot read /proc/net/snmp)",
                10.0,
                "fixed",
            ),
        ] {
            let mut hold = PodHold::default();
            read_log(
                &mut hold,
                &format!("2025-03-01T12:01:00.000Z drain-helper prestop: {line}\n"),
            );
            assert_eq!(hold.hold_end_seconds, Some(seconds), "{line}");
            assert_eq!(hold.hold_reason.as_deref(), Some(reason), "{line}");
        }
        // Not a release line: nothing read.
        let mut hold = PodHold::default();
        read_log(
            &mut hold,
            "2025-03-01T12:01:00.000Z drain-helper prestop: hold ended after soon: quiet\n",
        );
        assert_eq!(hold.hold_end_seconds, None);
    }

    #[test]
    fn a_pod_without_helper_is_measured_from_its_deletion() {
        let mut holds = BTreeMap::new();
        // The watch repeats the pod; the first deletion counts. Grace 30 s.
        read_deletions(
            &mut holds,
            r#"{"pod":"demo-a","deletion_timestamp":"2025-03-01T12:01:30Z","grace_seconds":30}
{"pod":"demo-a","deletion_timestamp":"2025-03-01T12:01:31Z","grace_seconds":30}
not json
{"pod":"demo-b","deletion_timestamp":null,"grace_seconds":null}
"#,
        );
        let hold = holds.get_mut("demo-a").unwrap();
        read_log(
            hold,
            "2025-03-01T12:01:00.300Z drain-e2e proxy: SIGQUIT, graceful: no longer accepting, finishing 2 connections\n",
        );
        assert_eq!(hold.kill_unix, parse_rfc3339("2025-03-01T12:01:30Z"));
        assert_eq!(hold.hold_end_seconds, None);
        let after = hold.signal_after_deletion().unwrap();
        assert!((after - 0.3).abs() < 1e-6, "{after}");
        assert!(!holds.contains_key("demo-b"), "not deleted: not reported");
    }

    #[test]
    fn collects_a_directory_of_logs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demo-a.log"), ADAPTIVE).unwrap();
        std::fs::write(
            dir.path().join("demo-new.log"),
            "2025-03-01T12:01:10.000Z drain-e2e proxy: listening on 0.0.0.0:8080, upstream 127.0.0.1:8081\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("demo-a.pid"), "123").unwrap();
        let holds = collect(dir.path(), None).unwrap();
        assert_eq!(
            holds.len(),
            1,
            "a pod still running is not reported: {holds:?}"
        );
        assert_eq!(holds[0].pod, "demo-a");
    }
}
