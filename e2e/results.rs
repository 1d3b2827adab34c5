//! `target/e2e/results.json`, the one definition of what a `make e2e` run writes: the
//! report, the picture and the verdict read it.

use serde::{Deserialize, Serialize};

use crate::holds::PodHold;
use crate::tally::Summary;

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
    /// Each terminated demo pod's hold and signal (`drain-e2e holds`).
    #[serde(default)]
    pub holds: Vec<PodHold>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
