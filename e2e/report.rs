//! `drain-e2e report results.json --svg FILE`: the table, the picture and the verdict of a
//! `make e2e` run. The verdict: exit 1 when an opted-in namespace lost any request.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::http::Failure;
use crate::load::{PathCounts, Summary};

/// `target/e2e/results.json`, as scripts/e2e.sh writes it.
#[derive(Debug, Deserialize, Serialize)]
pub struct Results {
    pub kubernetes_version: String,
    pub restarts: u32,
    pub lb_delay_seconds: f64,
    pub namespaces: Vec<NamespaceResult>,
    #[serde(default)]
    pub create_to_ready_seconds: Option<CreateToReady>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct NamespaceResult {
    pub name: String,
    /// Opted in (`drain.io/inject=enabled`): must lose nothing.
    pub injected: bool,
    pub rollouts: Vec<Rollout>,
    pub load: Summary,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Rollout {
    /// Wall clock when `kubectl rollout restart` ran, seconds since 1970.
    pub started_unix: f64,
    /// Until `kubectl rollout status` returned.
    pub seconds: f64,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct CreateToReady {
    pub injected: Vec<f64>,
    pub plain: Vec<f64>,
}

pub fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

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

pub struct Verdict {
    pub pass: bool,
    pub message: String,
}

/// Pass: every opted-in namespace lost nothing, on every path, and there was one to check.
pub fn verdict(results: &Results) -> Verdict {
    let injected: Vec<&NamespaceResult> =
        results.namespaces.iter().filter(|n| n.injected).collect();
    if injected.is_empty() {
        return Verdict {
            pass: false,
            message: "FAIL: the results have no opted-in namespace to check".into(),
        };
    }
    let lost: u64 = injected
        .iter()
        .flat_map(|n| n.load.paths.values())
        .map(PathCounts::lost)
        .sum();
    let requests: u64 = injected
        .iter()
        .flat_map(|n| n.load.paths.values())
        .map(|p| p.requests)
        .sum();
    if requests == 0 {
        return Verdict {
            pass: false,
            message: "FAIL: the opted-in namespace sent no request".into(),
        };
    }
    if lost > 0 {
        return Verdict {
            pass: false,
            message: format!(
                "FAIL: the opted-in namespace lost {lost} of {requests} requests (drain-webhook must lose none)"
            ),
        };
    }
    let plain_lost: u64 = results
        .namespaces
        .iter()
        .filter(|n| !n.injected)
        .flat_map(|n| n.load.paths.values())
        .map(PathCounts::lost)
        .sum();
    let note = if plain_lost == 0 {
        "; note: the plain namespace lost nothing either, so this run did not show the difference"
    } else {
        ""
    };
    Verdict {
        pass: true,
        message: format!("PASS: the opted-in namespace lost 0 of {requests} requests{note}"),
    }
}

pub fn table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kubernetes {}, {} rolling restarts, load balancer {} s late",
        results.kubernetes_version, results.restarts, results.lb_delay_seconds
    );
    let _ = writeln!(
        out,
        "{:<22} {:<8} {:<8} {:>9} {:>6} {:>8} {:>8} {:>6} {:>8} {:>5} {:>10} {:>6} {:>8}",
        "namespace",
        "injected",
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
        "rollouts"
    );
    for ns in &results.namespaces {
        let rollouts = ns
            .rollouts
            .iter()
            .map(|r| format!("{:.0}s", r.seconds))
            .collect::<Vec<_>>()
            .join(",");
        for (path, counts) in &ns.load.paths {
            let pct = if counts.requests == 0 {
                0.0
            } else {
                100.0 * counts.lost() as f64 / counts.requests as f64
            };
            let _ = writeln!(
                out,
                "{:<22} {:<8} {:<8} {:>9} {:>6} {:>7.2}% {:>8} {:>6} {:>8} {:>5} {:>10} {:>6} {:>8}",
                ns.name,
                if ns.injected { "yes" } else { "no" },
                path,
                counts.requests,
                counts.lost(),
                pct,
                counts.of(Failure::Refused),
                counts.of(Failure::Reset),
                counts.of(Failure::Timeout),
                counts.of(Failure::Http5xx),
                counts.of(Failure::NoBackend),
                counts.of(Failure::Other),
                rollouts
            );
        }
    }
    if let Some(c) = &results.create_to_ready_seconds {
        let show = |s: &[f64]| {
            median(s).map_or("n/a".to_string(), |m| {
                format!("{m:.2} s (median of {})", s.len())
            })
        };
        let _ = writeln!(
            out,
            "create to Ready: {} injected, {} plain",
            show(&c.injected),
            show(&c.plain)
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PATH_COLORS: [(&str, &str, &str); 2] = [
    ("service", "#1f77b4", "#d62728"),
    ("lb", "#2ca02c", "#ff7f0e"),
];

fn colors(path: &str) -> (&'static str, &'static str) {
    PATH_COLORS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map_or(("#555555", "#000000"), |(_, ok, lost)| (*ok, *lost))
}

/// Requests and lost requests per second, one panel per namespace side by side, on the same
/// axes; dashed lines mark the rolling restarts.
pub fn picture(results: &Results) -> String {
    let (panel_w, gap, left, top) = (560.0, 40.0, 50.0, 40.0);
    let (req_h, lost_h, mid) = (200.0, 90.0, 30.0);
    let width = left + results.namespaces.len().max(1) as f64 * (panel_w + gap);
    let height = top + req_h + mid + lost_h + 60.0;
    let seconds = results
        .namespaces
        .iter()
        .flat_map(|n| n.load.paths.values())
        .map(|p| p.series.len())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_req = results
        .namespaces
        .iter()
        .flat_map(|n| n.load.paths.values())
        .flat_map(|p| p.series.iter().map(|b| b[1]))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_lost = results
        .namespaces
        .iter()
        .flat_map(|n| n.load.paths.values())
        .flat_map(|p| p.series.iter().map(|b| b[2]))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="18" font-size="14">{}</text>"#,
        escape(&format!(
            "make e2e: requests and lost requests per second (kubernetes {}, {} restarts, load balancer {} s late)",
            results.kubernetes_version, results.restarts, results.lb_delay_seconds
        ))
    );
    for (i, ns) in results.namespaces.iter().enumerate() {
        let x0 = left + i as f64 * (panel_w + gap);
        let x = |second: f64| x0 + panel_w * second / seconds;
        let req_y = |n: f64| top + req_h - req_h * n / max_req;
        let lost_top = top + req_h + mid;
        let lost_y = |n: f64| lost_top + lost_h - lost_h * n / max_lost;
        let requests: u64 = ns.load.paths.values().map(|p| p.requests).sum();
        let lost: u64 = ns.load.paths.values().map(PathCounts::lost).sum();
        let _ = writeln!(
            svg,
            r#"<text x="{x0}" y="{}" font-weight="bold">{}</text>"#,
            top - 8.0,
            escape(&format!(
                "{} ({}): lost {lost} of {requests}",
                ns.name,
                if ns.injected {
                    "drain-webhook"
                } else {
                    "plain"
                }
            ))
        );
        // Axes and scale labels.
        let _ = writeln!(
            svg,
            r##"<rect x="{x0}" y="{top}" width="{panel_w}" height="{req_h}" fill="none" stroke="#999"/><rect x="{x0}" y="{lost_top}" width="{panel_w}" height="{lost_h}" fill="none" stroke="#999"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{max_req:.0}/s</text><text x="{}" y="{}" text-anchor="end">{max_lost:.0}/s</text><text x="{x0}" y="{}" fill="#444">lost per second</text><text x="{}" y="{}" text-anchor="end">{seconds:.0} s</text>"##,
            x0 - 4.0,
            top + 10.0,
            x0 - 4.0,
            lost_top + 10.0,
            lost_top - 6.0,
            x0 + panel_w,
            lost_top + lost_h + 16.0
        );
        for (n, rollout) in ns.rollouts.iter().enumerate() {
            let at = rollout.started_unix - ns.load.started_unix;
            if !(0.0..=seconds).contains(&at) {
                continue;
            }
            let rx = x(at);
            let _ = writeln!(
                svg,
                r##"<line x1="{rx:.1}" y1="{top}" x2="{rx:.1}" y2="{}" stroke="#888" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#666">restart {} ({:.0} s)</text>"##,
                lost_top + lost_h,
                rx + 3.0,
                top + 12.0 + 14.0 * n as f64,
                n + 1,
                rollout.seconds,
            );
        }
        let bar_w = (panel_w / seconds / 2.0).max(1.0);
        for (k, (path, counts)) in ns.load.paths.iter().enumerate() {
            let (ok_color, lost_color) = colors(path);
            let points = counts
                .series
                .iter()
                .map(|b| format!("{:.1},{:.1}", x(b[0] as f64 + 0.5), req_y(b[1] as f64)))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{ok_color}" stroke-width="1.5" points="{points}"/>"#
            );
            for b in counts.series.iter().filter(|b| b[2] > 0) {
                let _ = writeln!(
                    svg,
                    r#"<rect class="lost {path}" x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{:.1}" fill="{lost_color}"/>"#,
                    x(b[0] as f64) + k as f64 * bar_w,
                    lost_y(b[2] as f64),
                    lost_top + lost_h - lost_y(b[2] as f64)
                );
            }
            let legend_y = lost_top + lost_h + 32.0 + 14.0 * k as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{x0}" y="{}" width="10" height="10" fill="{ok_color}"/><rect x="{}" y="{}" width="10" height="10" fill="{lost_color}"/><text x="{}" y="{}">{}</text>"#,
                legend_y - 9.0,
                x0 + 12.0,
                legend_y - 9.0,
                x0 + 28.0,
                legend_y,
                escape(&format!(
                    "{path}: {} requests, {} lost",
                    counts.requests,
                    counts.lost()
                ))
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
