//! `target/e2e/results.json`, the one definition of what a `make e2e` run writes: the
//! report, the picture and the verdict read it, and `drain-e2e results DIR` assembles it from
//! what scripts/e2e.sh collected into DIR (each namespace's load summary, pods' holds,
//! rollouts and create-to-Ready samples) and the run's settings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::holds::PodHold;
use crate::observed::{ObservedCheck, check};
use crate::tally::Summary;

/// `target/e2e/results.json`.
#[derive(Debug, Deserialize, Serialize)]
pub struct Results {
    pub kubernetes_version: String,
    pub restarts: u32,
    pub lb_delay_seconds: f64,
    /// The run's settings (absent from files written before `drain-e2e results` existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo: Option<Demo>,
    pub namespaces: Vec<NamespaceResult>,
    #[serde(default)]
    pub create_to_ready_seconds: Option<CreateToReady>,
}

/// The demo's settings of a run, as scripts/e2e.sh passes them on (its `E2E_` variables).
#[derive(Clone, Debug, Deserialize, Serialize, clap::Args)]
pub struct Demo {
    #[arg(long)]
    pub proxy_image: String,
    #[arg(long)]
    pub app_image: String,
    /// `drain.io/hook` on the demo pods (E2E_HOOK).
    #[arg(long = "hook", default_value = "auto")]
    pub hook_annotation: String,
    /// The opted-in demo pods' `drain.io/status`: what the webhook planned.
    #[arg(long)]
    pub plan: String,
    /// The client modes (E2E_CLIENTS), a comma list.
    #[arg(long)]
    pub clients: String,
    /// `drain.io/delay` in seconds (E2E_DELAY); empty when unset.
    #[arg(long = "delay", default_value = "")]
    pub delay_annotation: String,
    /// `drain.io/max-delay` in seconds (E2E_MAX_DELAY); empty when unset.
    #[arg(long = "max-delay", default_value = "")]
    pub max_delay_annotation: String,
    /// `drain.io/profile` (E2E_PROFILE); `none` when unset.
    #[arg(long, default_value = "none")]
    pub profile: String,
    /// E2E_STREAM_LINGER.
    #[arg(long = "stream-linger", default_value_t = 0)]
    pub stream_linger_seconds: u32,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct NamespaceResult {
    pub name: String,
    /// Opted in (`drain.io/inject=enabled`): must lose nothing.
    pub injected: bool,
    pub rollouts: Vec<Rollout>,
    pub load: Summary,
    /// Each terminated demo pod's hold and signal (`drain-e2e holds`).
    #[serde(default)]
    pub holds: Vec<PodHold>,
    /// The opted-in namespace: what the webhook's drain observer saw, checked against `holds`
    /// (absent from runs without `drains.jsonl`, and for the plain namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedCheck>,
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

/// Injected median over plain median: what injection costs a pod start.
pub fn ready_ratio(c: &CreateToReady) -> Option<f64> {
    let (injected, plain) = (median(&c.injected)?, median(&c.plain)?);
    (plain > 0.0).then(|| injected / plain)
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

/// `drain-e2e results DIR ...`: what the run collected, and its settings.
#[derive(Clone, Debug, clap::Args)]
pub struct AssembleArgs {
    /// Where scripts/e2e.sh collected the run (E2E_OUT): for each namespace NS,
    /// `load-NS.json` (the load client's summary), `holds-NS.json` (`drain-e2e holds`),
    /// `rollouts-NS.txt` and `ready-NS.txt` (one `START END` line per rolling restart and per
    /// create-to-Ready sample, seconds since 1970), and `drains.jsonl` (the webhook's
    /// `GET /drains` answers, one per line; optional). results.json is written there.
    pub dir: PathBuf,
    /// The API server's gitVersion.
    #[arg(long)]
    pub kubernetes_version: String,
    #[arg(long)]
    pub restarts: u32,
    /// L, in seconds (E2E_LB_DELAY).
    #[arg(long)]
    pub lb_delay: u32,
    /// The opted-in namespace.
    #[arg(long)]
    pub opted_in: String,
    /// The plain namespace.
    #[arg(long)]
    pub plain: String,
    #[command(flatten)]
    pub demo: Demo,
}

/// Writes `DIR/results.json`.
pub fn run(args: &AssembleArgs) -> anyhow::Result<ExitCode> {
    let results = assemble(args)?;
    let path = args.dir.join("results.json");
    let mut text = serde_json::to_string_pretty(&results)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("drain-e2e results: wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn assemble(args: &AssembleArgs) -> anyhow::Result<Results> {
    let namespace = |name: &str, injected: bool| -> anyhow::Result<NamespaceResult> {
        let file = |kind: &str, ext: &str| args.dir.join(format!("{kind}-{name}.{ext}"));
        let rollouts = read_spans(&file("rollouts", "txt"))?
            .into_iter()
            .map(|(start, end)| Rollout {
                started_unix: start,
                seconds: end - start,
            })
            .collect();
        let holds: Vec<PodHold> = read_json(&file("holds", "json"))?;
        // What GET /drains answered (the script's file; none in runs from before it).
        let drains = args.dir.join("drains.jsonl");
        let observed = match injected && drains.exists() {
            true => {
                let answers = std::fs::read_to_string(&drains)
                    .with_context(|| format!("cannot read {}", drains.display()))?;
                Some(check(name, &holds, &answers))
            }
            false => None,
        };
        Ok(NamespaceResult {
            name: name.to_string(),
            injected,
            rollouts,
            load: read_json(&file("load", "json"))?,
            holds,
            observed,
        })
    };
    let ready = |name: &str| -> anyhow::Result<Vec<f64>> {
        let spans = read_spans(&args.dir.join(format!("ready-{name}.txt")))?;
        Ok(spans.into_iter().map(|(start, end)| end - start).collect())
    };
    Ok(Results {
        kubernetes_version: args.kubernetes_version.clone(),
        restarts: args.restarts,
        lb_delay_seconds: f64::from(args.lb_delay),
        demo: Some(args.demo.clone()),
        namespaces: vec![
            namespace(&args.opted_in, true)?,
            namespace(&args.plain, false)?,
        ],
        create_to_ready_seconds: Some(CreateToReady {
            injected: ready(&args.opted_in)?,
            plain: ready(&args.plain)?,
        }),
    })
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (scripts/e2e.sh collects it)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not what scripts/e2e.sh collects there (see drain-e2e results --help)",
            path.display()
        )
    })
}

/// `START END` lines, seconds since 1970 (`date +%s.%N`); blank lines are skipped.
fn read_spans(path: &Path) -> anyhow::Result<Vec<(f64, f64)>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (scripts/e2e.sh collects it)",
            path.display()
        )
    })?;
    parse_spans(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn parse_spans(text: &str) -> Result<Vec<(f64, f64)>, String> {
    let time = |field: &str| {
        field
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0)
    };
    let mut spans = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [] => {}
            [start, end] => match (time(start), time(end)) {
                (Some(start), Some(end)) if end >= start => spans.push((start, end)),
                _ => return Err(bad_span(n, line)),
            },
            _ => return Err(bad_span(n, line)),
        }
    }
    Ok(spans)
}

fn bad_span(index: usize, line: &str) -> String {
    format!(
        "line {}: {line:?} is not `START END` (two times in seconds since 1970, END not before START, as date +%s.%N prints them)",
        index + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(
            parse_spans("10.5 12.25\n\n13 13\n"),
            Ok(vec![(10.5, 12.25), (13.0, 13.0)])
        );
        assert_eq!(parse_spans(""), Ok(vec![]));
        for bad in ["10", "10 9", "a b", "1 2 3", "-1 2", "1 inf"] {
            let error = parse_spans(&format!("1 2\n{bad}\n")).unwrap_err();
            assert!(
                error.starts_with("line 2: ") && error.contains("is not `START END`"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn the_ratio_is_of_the_medians() {
        let ready = |injected: &[f64], plain: &[f64]| CreateToReady {
            injected: injected.to_vec(),
            plain: plain.to_vec(),
        };
        let r = ready_ratio(&ready(&[2.84, 2.9, 2.8], &[1.88, 1.91, 1.9])).unwrap();
        assert!((r - 2.84 / 1.9).abs() < 1e-9, "{r}");
        assert_eq!(ready_ratio(&ready(&[], &[1.0])), None);
        assert_eq!(ready_ratio(&ready(&[1.0], &[0.0])), None);
    }
}
