//! `drain-e2e report results.json --svg FILE`: the tables, the picture and the verdict of a
//! `make e2e` run. The verdict: exit 1 when an opted-in namespace lost any request, any stream
//! message, or had a stream end other than cleanly, or when the drains the webhook observed
//! disagree with its holds while records were expected (`observed.rs`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::clients::Mode;
use crate::holds::PodHold;
use crate::http::Failure;
use crate::picture::picture;
use crate::results::{NamespaceResult, Results, median, ready_ratio};
use crate::tally::EndKind;
use crate::tally::PathCounts;

pub fn run(results: &Path, svg: Option<&Path>) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("cannot read {}", results.display()))?;
    let results: Results = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a make e2e results file (scripts/e2e.sh writes it)",
            results.display()
        )
    })?;
    print!("{}", table(&results));
    if let Some(svg) = svg {
        std::fs::write(svg, picture(&results))
            .with_context(|| format!("cannot write {}", svg.display()))?;
        println!("picture: {}", svg.display());
    }
    let verdict = verdict(&results);
    println!("{}", verdict.message);
    Ok(if verdict.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How the streams of one path ended, with the unclean ends that came when the pod that served
/// them was killed at the end of its grace period counted apart.
#[derive(Debug, Default, PartialEq)]
pub struct StreamEnds {
    pub clean: u64,
    /// Broken other than by SIGKILL at the end of the grace period.
    pub reset: u64,
    pub stalled: u64,
    /// Broken within a second of its pod's grace period running out (or later).
    pub killed: u64,
}

/// How close to the grace period's end an unclean end must be to count as SIGKILL's: the
/// deletion time is known to the second only.
const KILL_SLACK_SECONDS: f64 = 1.0;

pub fn stream_ends(ns: &NamespaceResult, path: &str, counts: &PathCounts) -> StreamEnds {
    let Some(stream) = &counts.stream else {
        return StreamEnds::default();
    };
    let killed = ns
        .load
        .stream_ends
        .iter()
        .filter(|end| end.path == path && end.kind != EndKind::Clean)
        .filter(|end| {
            ns.holds
                .iter()
                .find(|hold| hold.pod == end.pod)
                .and_then(|hold| hold.kill_unix)
                .is_some_and(|kill| end.at_unix >= kill - KILL_SLACK_SECONDS)
        })
        .count() as u64;
    let reset_killed = killed.min(stream.reset);
    StreamEnds {
        clean: stream.clean,
        reset: stream.reset - reset_killed,
        stalled: stream.stalled - (killed - reset_killed).min(stream.stalled),
        killed,
    }
}

pub struct Verdict {
    pub pass: bool,
    pub message: String,
}

/// Requests (request modes) and messages (stream mode) sent, and what was lost of them.
#[derive(Default)]
struct Totals {
    requests: u64,
    lost_requests: u64,
    messages: u64,
    missing: u64,
    unclean_streams: u64,
}

fn totals<'a>(namespaces: impl Iterator<Item = &'a NamespaceResult>) -> Totals {
    let mut totals = Totals::default();
    for ns in namespaces {
        for (mode, paths) in &ns.load.modes {
            for counts in paths.values() {
                match (&counts.stream, mode) {
                    (Some(stream), _) => {
                        totals.messages += stream.messages;
                        totals.missing += stream.missing;
                        totals.unclean_streams += stream.reset + stream.stalled;
                    }
                    (None, _) => {
                        totals.requests += counts.requests;
                        totals.lost_requests += counts.lost();
                    }
                }
            }
        }
    }
    totals
}

/// Pass: every opted-in namespace lost nothing, in every mode and on every path (streams: no
/// message missing, every stream ended cleanly), and there was something to check.
pub fn verdict(results: &Results) -> Verdict {
    let fail = |message: String| Verdict {
        pass: false,
        message,
    };
    if !results.namespaces.iter().any(|n| n.injected) {
        return fail("FAIL: the results have no opted-in namespace to check".into());
    }
    let on = totals(results.namespaces.iter().filter(|n| n.injected));
    if on.requests + on.messages == 0 {
        return fail("FAIL: the opted-in namespace sent no request and received no message".into());
    }
    let sent = format!(
        "{} of {} requests, {} of {} stream messages, {} streams cut",
        on.lost_requests, on.requests, on.missing, on.messages, on.unclean_streams
    );
    if on.lost_requests + on.missing + on.unclean_streams > 0 {
        return fail(format!(
            "FAIL: the opted-in namespace lost {sent} (drain-webhook must lose none)"
        ));
    }
    // What the webhook observed must agree with the holds when records were expected.
    if let Some(observed) = results
        .namespaces
        .iter()
        .filter(|n| n.injected)
        .filter_map(|n| n.observed.as_ref())
        .find(|o| o.fails())
    {
        return fail(format!(
            "FAIL: the opted-in namespace lost {sent}, but {}",
            observed.message
        ));
    }
    let plain = totals(results.namespaces.iter().filter(|n| !n.injected));
    let note = if plain.lost_requests + plain.missing + plain.unclean_streams == 0 {
        "; note: the plain namespace lost nothing either, so this run did not show the difference"
    } else {
        ""
    };
    Verdict {
        pass: true,
        message: format!("PASS: the opted-in namespace lost {sent}{note}"),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

pub fn table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kubernetes {}, {} rolling restarts, load balancer {} s late",
        results.kubernetes_version, results.restarts, results.lb_delay_seconds
    );
    requests_table(&mut out, results);
    streams_table(&mut out, results);
    holds_table(&mut out, results);
    if let Some(c) = &results.create_to_ready_seconds {
        let show = |s: &[f64]| {
            median(s).map_or("n/a".to_string(), |m| {
                format!("{m:.2} s (median of {})", s.len())
            })
        };
        let ratio = ready_ratio(c).map_or("n/a".to_string(), |r| format!("x{r:.2}"));
        let _ = writeln!(
            out,
            "create to Ready: {} injected, {} plain, ratio {ratio} (issue 22: at most x1.10)",
            show(&c.injected),
            show(&c.plain)
        );
    }
    out
}

fn requests_table(out: &mut String, results: &Results) {
    let _ = writeln!(
        out,
        "{:<22} {:<8} {:<9} {:<8} {:>9} {:>6} {:>8} {:>8} {:>6} {:>8} {:>5} {:>10} {:>6} {:>7} {:>8}",
        "namespace",
        "injected",
        "mode",
        "path",
        "requests",
        "lost",
        "lost %",
        "refused",
        "reset",
        "timeout",
        "5xx",
        "no-backend",
        "other",
        "retried",
        "rollouts"
    );
    for ns in &results.namespaces {
        let rollouts = ns
            .rollouts
            .iter()
            .map(|r| format!("{:.0}s", r.seconds))
            .collect::<Vec<_>>()
            .join(",");
        for (mode, paths) in &ns.load.modes {
            for (path, counts) in paths.iter().filter(|(_, c)| c.stream.is_none()) {
                let _ = writeln!(
                    out,
                    "{:<22} {:<8} {:<9} {:<8} {:>9} {:>6} {:>7.2}% {:>8} {:>6} {:>8} {:>5} {:>10} {:>6} {:>7} {:>8}",
                    ns.name,
                    if ns.injected { "yes" } else { "no" },
                    mode.name(),
                    path,
                    counts.requests,
                    counts.lost(),
                    percent(counts.lost(), counts.requests),
                    counts.of(Failure::Refused),
                    counts.of(Failure::Reset),
                    counts.of(Failure::Timeout),
                    counts.of(Failure::Http5xx),
                    counts.of(Failure::NoBackend),
                    counts.of(Failure::Other),
                    counts.retried,
                    rollouts
                );
            }
        }
    }
}

fn streams_table(out: &mut String, results: &Results) {
    let streams: Vec<_> = results
        .namespaces
        .iter()
        .flat_map(|ns| {
            ns.load
                .modes
                .get(&Mode::Stream)
                .into_iter()
                .flatten()
                .map(move |(path, counts)| (ns, path, counts))
        })
        .collect();
    if streams.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "streams: every message counted; an end is clean, reset, stalled, or killed (SIGKILL at the end of the grace period)"
    );
    let _ = writeln!(
        out,
        "{:<22} {:<8} {:<8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} {:>8} {:>7} {:>10}",
        "namespace",
        "injected",
        "path",
        "messages",
        "missing",
        "opened",
        "refused",
        "clean",
        "reset",
        "stalled",
        "killed",
        "open-at-end"
    );
    for (ns, path, counts) in streams {
        let stream = counts.stream.clone().unwrap_or_default();
        let ends = stream_ends(ns, path, counts);
        let _ = writeln!(
            out,
            "{:<22} {:<8} {:<8} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6} {:>8} {:>7} {:>10}",
            ns.name,
            if ns.injected { "yes" } else { "no" },
            path,
            stream.messages,
            stream.missing,
            counts.ok,
            counts.failed(),
            ends.clean,
            ends.reset,
            ends.stalled,
            ends.killed,
            stream.open_at_stop
        );
    }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("-".into(), |s| format!("{s:.1}"))
}

fn holds_table(out: &mut String, results: &Results) {
    for ns in results.namespaces.iter().filter(|ns| !ns.holds.is_empty()) {
        let signals: Vec<f64> = ns
            .holds
            .iter()
            .filter_map(PodHold::signal_after_deletion)
            .collect();
        let _ = writeln!(
            out,
            "{}: {} pods terminated, load balancer L = {} s late; median {} s from deletion to the proxy's stop signal",
            ns.name,
            ns.holds.len(),
            results.lb_delay_seconds,
            seconds(median(&signals))
        );
        let _ = writeln!(
            out,
            "  {:<34} {:>9} {:<8} {:>9} {:>8} {:>10} {:<40}",
            "pod", "hold end", "why", "receiving", "moved at", "signal at", "helper's reason"
        );
        if let Some(observed) = &ns.observed {
            let _ = writeln!(out, "  observed by the webhook: {}", observed.message);
        }
        for hold in &ns.holds {
            let _ = writeln!(
                out,
                "  {:<34} {:>9} {:<8} {:>9} {:>8} {:>10} {:<40}",
                hold.pod,
                seconds(hold.hold_end_seconds),
                hold.hold_reason.as_deref().unwrap_or("-"),
                hold.still_receiving,
                seconds(hold.moved_after_deletion()),
                seconds(hold.signal_after_deletion()),
                hold.hold_detail.as_deref().unwrap_or("(no helper line)")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::StreamEnd;
    use crate::tally::{StreamCounts, Summary};

    #[test]
    fn unclean_ends_at_the_end_of_the_grace_period_are_sigkill() {
        let end = |pod: &str, at_unix: f64| StreamEnd {
            path: "service".into(),
            at_unix,
            pod: pod.into(),
            kind: EndKind::Reset,
            detail: String::new(),
        };
        let counts = PathCounts {
            stream: Some(StreamCounts {
                clean: 4,
                reset: 3,
                ..StreamCounts::default()
            }),
            ..PathCounts::default()
        };
        let ns = NamespaceResult {
            name: "on".into(),
            injected: true,
            rollouts: Vec::new(),
            load: Summary {
                stream_ends: vec![end("a", 145.5), end("a", 100.0), end("b", 50.0)],
                ..Summary::default()
            },
            holds: vec![PodHold {
                pod: "a".into(),
                kill_unix: Some(146.0),
                ..PodHold::default()
            }],
            observed: None,
        };
        assert_eq!(
            stream_ends(&ns, "service", &counts),
            StreamEnds {
                clean: 4,
                reset: 2,
                stalled: 0,
                killed: 1
            }
        );
    }
}
