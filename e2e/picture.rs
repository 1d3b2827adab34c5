//! The SVG picture of a `make e2e` run: one row of panels per client mode, one column per
//! namespace, each with units (requests, or stream messages) and lost units per second on
//! each path; dashed lines mark the rolling restarts.

use std::fmt::Write as _;

use crate::clients::Mode;
use crate::results::{NamespaceResult, Results};
use crate::tally::PathCounts;

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

/// The modes the run had, in their order.
fn modes(results: &Results) -> Vec<Mode> {
    let mut modes: Vec<Mode> = results
        .namespaces
        .iter()
        .flat_map(|n| n.load.modes.keys().copied())
        .collect();
    modes.sort();
    modes.dedup();
    modes
}

/// Units and lost units per second, one panel per namespace side by side and one row per
/// mode, on the same time axis; each row has its own scale.
pub fn picture(results: &Results) -> String {
    let (panel_w, gap, left, top) = (560.0, 40.0, 50.0, 40.0);
    let (req_h, lost_h, mid) = (200.0, 90.0, 30.0);
    let row_h = req_h + mid + lost_h + 100.0;
    let modes = modes(results);
    let width = left + results.namespaces.len().max(1) as f64 * (panel_w + gap);
    let height = top + row_h * modes.len().max(1) as f64;
    let all_paths = || {
        results
            .namespaces
            .iter()
            .flat_map(|n| n.load.modes.values().flat_map(|paths| paths.values()))
    };
    let seconds = all_paths()
        .map(|p| p.series.len())
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
            "make e2e: requests (stream messages) and lost per second, per client mode (kubernetes {}, {} restarts, load balancer {} s late)",
            results.kubernetes_version, results.restarts, results.lb_delay_seconds
        ))
    );
    for (row, mode) in modes.iter().enumerate() {
        let row_top = top + 10.0 + row as f64 * row_h;
        let paths_of = |ns: &NamespaceResult| ns.load.modes.get(mode).cloned().unwrap_or_default();
        let max_req = results
            .namespaces
            .iter()
            .flat_map(|n| paths_of(n).into_values())
            .flat_map(|p| p.series.into_iter().map(|b| b[1]))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let max_lost = results
            .namespaces
            .iter()
            .flat_map(|n| paths_of(n).into_values())
            .flat_map(|p| p.series.into_iter().map(|b| b[2]))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let unit = if *mode == Mode::Stream {
            "messages"
        } else {
            "requests"
        };
        for (i, ns) in results.namespaces.iter().enumerate() {
            let paths = paths_of(ns);
            let top = row_top;
            let x0 = left + i as f64 * (panel_w + gap);
            let x = |second: f64| x0 + panel_w * second / seconds;
            let req_y = |n: f64| top + req_h - req_h * n / max_req;
            let lost_top = top + req_h + mid;
            let lost_y = |n: f64| lost_top + lost_h - lost_h * n / max_lost;
            let units: u64 = paths
                .values()
                .map(|p| p.series.iter().map(|b| b[1]).sum::<u64>())
                .sum();
            let lost: u64 = paths.values().map(PathCounts::lost).sum();
            let _ = writeln!(
                svg,
                r#"<text x="{x0}" y="{}" font-weight="bold">{}</text>"#,
                top - 8.0,
                escape(&format!(
                    "{} ({}), {}: lost {lost}, of {units} {unit}",
                    ns.name,
                    if ns.injected {
                        "drain-webhook"
                    } else {
                        "plain"
                    },
                    mode.name()
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
            for (k, (path, counts)) in paths.iter().enumerate() {
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
                        r#"<rect class="lost {} {path}" x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{:.1}" fill="{lost_color}"/>"#,
                        mode.name(),
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
                        "{path}: {} {unit}, {} lost",
                        counts.series.iter().map(|b| b[1]).sum::<u64>(),
                        counts.lost()
                    ))
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}
