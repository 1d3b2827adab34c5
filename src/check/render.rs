//! `check -o text` (one line per step, the fix under a failure) and `-o json`.

use std::fmt::Write as _;

use super::{Outcome, Report};

/// One line per step: `[pass] name: detail`, with `hint:` or `fix:` under warnings and
/// failures, and a last line with the verdict.
pub fn render_text(report: &Report) -> String {
    let mut text = String::new();
    for step in &report.steps {
        let mark = match step.outcome {
            Outcome::Pass => "[pass]",
            Outcome::Warn => "[warn]",
            Outcome::Fail => "[FAIL]",
            Outcome::Skipped => "[skip]",
        };
        let _ = writeln!(text, "{mark} {}: {}", step.step.name, step.detail);
        if let Some(hint) = &step.hint {
            let label = if step.outcome == Outcome::Fail {
                "fix"
            } else {
                "hint"
            };
            let _ = writeln!(text, "       {label}: {hint}");
        }
    }
    let tries = match report.attempts {
        1 => String::new(),
        n => format!(" after {n} attempts in {}s", report.waited_seconds),
    };
    let failed = report
        .steps
        .iter()
        .filter(|s| s.outcome == Outcome::Fail)
        .count();
    let _ = match failed {
        0 => writeln!(text, "drain-webhook is working{tries}"),
        1 => writeln!(text, "1 step failed{tries}"),
        n => writeln!(text, "{n} steps failed{tries}"),
    };
    text
}

/// The report as JSON (`passed`, `attempts`, `waitedSeconds`, `steps[]` with `name`,
/// `description`, `outcome`, `detail`, `hint`).
pub fn render_json(report: &Report) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}
