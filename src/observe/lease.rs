//! One observer at a time: a `coordination.k8s.io/v1` Lease, acquired and renewed the way
//! client-go's leaderelection does (no maintained crate supports kube 5: docs/decisions.md).
//! Expiry is judged on this replica's own clock, from when it last saw the Lease change,
//! never by comparing another replica's `renewTime` with ours (clock skew).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::cluster::ApiCall;

/// The Lease calls: tests/chart.rs checks the chart's Role grants each one.
pub const API_CALLS: &[ApiCall] = &[
    ApiCall {
        verb: "get",
        group: "coordination.k8s.io",
        resource: "leases",
        named: true,
    },
    ApiCall {
        verb: "create",
        group: "coordination.k8s.io",
        resource: "leases",
        named: false,
    },
    ApiCall {
        verb: "update",
        group: "coordination.k8s.io",
        resource: "leases",
        named: true,
    },
];

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This process: the pod name and a per-process suffix, so a restarted container is a new
    /// holder.
    pub identity: String,
    /// `leaseDurationSeconds`: a follower takes over once the Lease went unrenewed this long.
    pub duration: Duration,
    /// How often the leader renews and a follower retries.
    pub retry: Duration,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This process holds the Lease, renewed at `renewed`; `after`: the previous holder's
    /// last renewal when this process took it over.
    Leader {
        after: Option<Timestamp>,
        renewed: Timestamp,
    },
    Follower {
        holder: Option<String>,
    },
}

#[derive(Debug)]
pub struct LeaseLock {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The Lease's resourceVersion and when this replica first saw it.
    observed: Option<(Option<String>, Instant)>,
    /// While leading: the previous holder's last renewal.
    term: Option<Option<Timestamp>>,
}

impl LeaseLock {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            term: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Acquires or renews the Lease, or reports who holds it.
    pub async fn step(&mut self) -> Result<Role, kube::Error> {
        // MicroTime keeps microseconds: the value stored is exactly the one returned.
        let now = Timestamp::from_microsecond(Timestamp::now().as_microsecond())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let Some(lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => Ok(self.lead(&created, None, now)),
                Err(err) if conflict(&err) => Ok(self.follow(None)),
                Err(err) => Err(err),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let version = lease.metadata.resource_version.clone();
        let seen_at = match &self.observed {
            Some((seen, at)) if *seen == version => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((version, at));
                at
            }
        };
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.config.identity.as_str()) && self.term.is_some();
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.config.duration, Duration::from_secs);
        if !mine && holder.is_some() && seen_at.elapsed() < duration {
            return Ok(self.follow(holder));
        }
        let (acquired, transitions, after) = match (mine, self.term) {
            (true, Some(after)) => (
                spec.acquire_time.map_or(now, |t| t.0),
                spec.lease_transitions.unwrap_or(0),
                after,
            ),
            _ => (
                now,
                spec.lease_transitions.unwrap_or(0).saturating_add(1),
                spec.renew_time.map(|t| t.0),
            ),
        };
        let mut next = lease;
        next.spec = Some(self.spec(acquired, now, transitions));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &next)
            .await
        {
            Ok(stored) => Ok(self.lead(&stored, after, now)),
            Err(err) if conflict(&err) => Ok(self.follow(holder)),
            Err(err) => Err(err),
        }
    }

    /// Gives the Lease up (clean shutdown), so a follower takes over at its next retry. The
    /// last renewal stays: the successor counts the records that finished after it.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        if self.term.take().is_none() {
            return Ok(());
        }
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(drop)
    }

    /// No longer leading (a renewal failed for too long).
    pub fn step_down(&mut self) {
        self.term = None;
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn lead(&mut self, stored: &Lease, after: Option<Timestamp>, renewed: Timestamp) -> Role {
        self.observed = Some((stored.metadata.resource_version.clone(), Instant::now()));
        self.term = Some(after);
        Role::Leader { after, renewed }
    }

    fn follow(&mut self, holder: Option<String>) -> Role {
        self.term = None;
        Role::Follower { holder }
    }
}

fn conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}
