//! How the caches' watches report their health: the first failure as a warning with what it
//! makes stale, the recovery once, the failures in between only at debug level, so that an API
//! server that comes and goes does not flood the log.

use kube::runtime::watcher;

pub(super) struct WatchHealth {
    /// `namespace`, `node`: the watch's name in its log lines.
    what: &'static str,
    /// What a failing watch leaves stale, said with its first failure.
    stale: &'static str,
    failing: bool,
}

impl WatchHealth {
    pub(super) fn new(what: &'static str, stale: &'static str) -> Self {
        WatchHealth {
            what,
            stale,
            failing: false,
        }
    }

    /// An event arrived.
    pub(super) fn ok(&mut self) {
        if self.failing {
            tracing::info!("{} watch recovered", self.what);
            self.failing = false;
        }
    }

    /// The watch failed (it retries with backoff).
    pub(super) fn failed(&mut self, err: &watcher::Error) {
        if self.failing {
            tracing::debug!(error = %err, "{} watch still failing", self.what);
        } else {
            tracing::warn!(error = %err, "{} watch failed; retrying ({})", self.what, self.stale);
            self.failing = true;
        }
    }

    /// The stream ended (only when the process shuts down).
    pub(super) fn ended(&self) {
        tracing::warn!("{} watch ended", self.what);
    }

    #[cfg(test)]
    pub(super) fn is_failing(&self) -> bool {
        self.failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_remembered_until_an_event_arrives() {
        let mut health = WatchHealth::new("node", "the decision may be stale");
        assert!(!health.is_failing());
        let err = watcher::Error::NoResourceVersion;
        health.failed(&err);
        health.failed(&err);
        assert!(health.is_failing());
        health.ok();
        assert!(!health.is_failing());
    }
}
