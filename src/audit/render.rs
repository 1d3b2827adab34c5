//! The audit's rows as a terminal table, JSON or YAML.

use super::*;

/// Renders the rows: a table (coloured when `colour`), JSON or YAML.
pub fn render(
    rows: &[Row],
    format: crate::offline::OutputFormat,
    colour: bool,
) -> Result<String, OfflineError> {
    match format.structured(&rows) {
        Some(rendered) => rendered.map_err(OfflineError::Output),
        None => Ok(table(rows, colour)),
    }
}

pub(super) fn table(rows: &[Row], colour: bool) -> String {
    if rows.is_empty() {
        return "no workload in the input\n".into();
    }
    let width = rows
        .iter()
        .map(|r| r.workload.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:width$}  {:20}  {:5}  {:5}  WOULD CHANGE",
        "WORKLOAD", "COVERAGE", "DRIFT", "RISKS"
    );
    for r in rows {
        let label = r.coverage.label();
        let painted = if colour {
            let code = match r.coverage {
                Coverage::Protected => "32",
                Coverage::OptedOut | Coverage::Skipped | Coverage::WebhookNamespace => "33",
                _ => "31",
            };
            format!("\x1b[{code}m{label:20}\x1b[0m")
        } else {
            format!("{label:20}")
        };
        let change = match &r.would_change {
            None => "nothing".to_owned(),
            Some(c) => {
                let hooks: Vec<String> = c
                    .containers
                    .iter()
                    .map(|c| format!("{} {}:{}s", c.container, c.hook, c.delay_seconds))
                    .collect();
                format!(
                    "grace {} -> {}s; {}",
                    c.grace_before
                        .map(|g| format!("{g}s"))
                        .unwrap_or_else(|| "unset".into()),
                    c.grace_after,
                    hooks.join(", ")
                )
            }
        };
        let _ = writeln!(
            out,
            "{:width$}  {painted}  {:5}  {:5}  {change}",
            r.workload,
            r.drift.len(),
            r.risks.len()
        );
    }
    for r in rows {
        if r.reason.is_none() && r.drift.is_empty() && r.risks.is_empty() && r.observed.is_none() {
            continue;
        }
        let _ = writeln!(out, "\n{}", r.workload);
        if let Some(reason) = &r.reason {
            let _ = writeln!(out, "  {}: {reason}", r.coverage.label());
        }
        for d in &r.drift {
            let _ = writeln!(out, "  drift: {d}");
        }
        for f in &r.risks {
            let _ = writeln!(out, "  risk {}: {}\n    fix: {}", f.kind, f.message, f.fix);
        }
        if let Some(o) = &r.observed {
            let lag = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.1} s"));
            let _ = writeln!(
                out,
                "  observed: {} drains, {} hit the cap; lag median {}, max {} (last {})\n    {}: {}",
                o.drains,
                o.cap_hits,
                lag(o.lag_median_seconds),
                lag(o.lag_max_seconds),
                o.recent,
                o.recommendation.verdict.label(),
                o.recommendation.message
            );
        }
    }
    out
}
