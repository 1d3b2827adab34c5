//! The observer's loop: hold the Lease, and while holding it, watch the planned pods.

use std::collections::HashSet;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Observed;
use super::drains::{Limits, Outcome, Window};
use super::lease::{LeaseConfig, LeaseLock, Role};
use super::unplanned::{OPTED_IN_SELECTOR, UNPLANNED_SELECTOR, Unplanned};
use super::workload::Workload;
use crate::admission::Reviewer;
use crate::cluster::ApiCall;
use crate::drain_record::DrainRecord;
use crate::patch::PLANNED_SELECTOR;

/// The pod watch and the Events: tests/chart.rs checks the chart grants each one.
pub const API_CALLS: &[ApiCall] = &[
    ApiCall {
        verb: "list",
        group: "",
        resource: "pods",
        named: false,
    },
    ApiCall {
        verb: "watch",
        group: "",
        resource: "pods",
        named: false,
    },
    ApiCall {
        verb: "create",
        group: "events.k8s.io",
        resource: "events",
        named: false,
    },
    // kube's Recorder turns a repeat of the same Event within 6 minutes into a series.
    ApiCall {
        verb: "patch",
        group: "events.k8s.io",
        resource: "events",
        named: false,
    },
];

#[derive(Debug, Clone)]
pub struct ObserverConfig {
    pub lease: LeaseConfig,
    pub limits: Limits,
    /// The admission planner: with it, the leader also reports pods in opted-in namespaces
    /// created unmutated (`unplanned`); `None` leaves that out.
    pub planner: Option<Arc<Reviewer>>,
}

/// Aborts the leader's watch when dropped: a lost Lease, a shutdown, or this task aborted.
struct Leading(JoinHandle<()>);

impl Drop for Leading {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs until `stop` turns true: contends for the Lease every `retry`, and watches planned
/// pods while it holds it. On a clean stop the Lease is released.
pub async fn run(
    client: Client,
    config: ObserverConfig,
    observed: Arc<Observed>,
    mut stop: watch::Receiver<bool>,
) {
    let identity = config.lease.identity.clone();
    let retry = config.lease.retry;
    // A leader that cannot renew for two thirds of the duration stops observing (client-go's
    // renewDeadline), well before a follower may take over.
    let renew_deadline = config.lease.duration * 2 / 3;
    let mut lock = LeaseLock::new(client.clone(), config.lease);
    observed.board.started(&identity);
    let mut leading: Option<(Leading, watch::Sender<Window>)> = None;
    let mut renewed_at = Instant::now();
    loop {
        let step = tokio::time::timeout(renew_deadline, lock.step()).await;
        match step.unwrap_or_else(|_| Err(kube::Error::Service("timed out".into()))) {
            Ok(Role::Leader { after, renewed }) => {
                renewed_at = Instant::now();
                let window = Window {
                    after,
                    through: renewed,
                };
                match &leading {
                    Some((_, windows)) => {
                        windows.send_replace(window);
                    }
                    None => {
                        tracing::info!(identity, "observer: leading, watching planned pods");
                        observed.board.leading(config.limits);
                        observed.series.set_leader(true);
                        let (windows, window_rx) = watch::channel(window);
                        let task = tokio::spawn(lead(
                            client.clone(),
                            identity.clone(),
                            Arc::clone(&observed),
                            window_rx,
                            config.planner.clone(),
                        ));
                        leading = Some((Leading(task), windows));
                    }
                }
            }
            Ok(Role::Follower { holder }) => {
                if leading.take().is_some() {
                    tracing::warn!(?holder, "observer: the Lease went to another replica");
                }
                observed.series.set_leader(false);
                observed.board.following(holder);
            }
            Err(err) => {
                tracing::warn!(error = %err, "observer: cannot read or renew the Lease");
                if leading.is_some() && renewed_at.elapsed() >= renew_deadline {
                    tracing::warn!("observer: not renewed in time, no longer leading");
                    leading = None;
                    lock.step_down();
                    observed.series.set_leader(false);
                    observed.board.following(None);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    drop(leading);
    if let Err(err) = lock.release().await {
        tracing::warn!(error = %err, "observer: cannot release the Lease");
    }
    observed.series.set_leader(false);
}

/// The leader's watch: planned pods, selected server-side, read event by event.
async fn lead(
    client: Client,
    identity: String,
    observed: Arc<Observed>,
    mut windows: watch::Receiver<Window>,
    planner: Option<Arc<Reviewer>>,
) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "drain-webhook".into(),
            instance: Some(identity),
        },
    );
    // Aborted with this task.
    let _unplanned = planner.map(|planner| {
        Leading(tokio::spawn(watch_unplanned(
            client.clone(),
            planner,
            Arc::clone(&observed),
            recorder.clone(),
        )))
    });
    let pods: Api<Pod> = Api::all(client);
    let mut events =
        pin!(watcher(pods, watcher::Config::default().labels(PLANNED_SELECTOR)).default_backoff());
    loop {
        let outcomes = tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) | watcher::Event::Delete(pod))) => {
                    let window = *windows.borrow();
                    let mut state = observed.board.lock();
                    let Some(drains) = state.drains.as_mut() else { return };
                    drains.observe_pod(&pod, &window, Instant::now())
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "observer: pod watch failed, retrying");
                    continue;
                }
                None => return,
            },
            changed = windows.changed() => {
                if changed.is_err() {
                    return;
                }
                let window = *windows.borrow_and_update();
                let mut state = observed.board.lock();
                let Some(drains) = state.drains.as_mut() else { return };
                drains.release(&window, Instant::now())
            }
        };
        for outcome in outcomes {
            report(&observed, &recorder, outcome);
        }
    }
}

/// The second watch: opted-in namespaces first (listed whole), then every pod admission did
/// not label, each checked once (`Unplanned`).
async fn watch_unplanned(
    client: Client,
    planner: Arc<Reviewer>,
    observed: Arc<Observed>,
    recorder: Recorder,
) {
    // Metadata only: the names are all it needs.
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
    let mut namespaces = pin!(
        watcher(
            namespaces,
            watcher::Config::default().labels(OPTED_IN_SELECTOR)
        )
        .default_backoff()
    );
    let mut opted_in = HashSet::new();
    let mut listing = HashSet::new();
    let mut synced = false;
    let pods: Api<Pod> = Api::all(client);
    let mut pods = pin!(
        watcher(pods, watcher::Config::default().labels(UNPLANNED_SELECTOR)).default_backoff()
    );
    let mut unplanned = Unplanned::default();
    loop {
        tokio::select! {
            event = namespaces.next() => match event {
                Some(Ok(watcher::Event::Init)) => listing.clear(),
                Some(Ok(watcher::Event::InitApply(ns))) => {
                    listing.insert(ns.metadata.name.unwrap_or_default());
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    opted_in = std::mem::take(&mut listing);
                    synced = true;
                }
                Some(Ok(watcher::Event::Apply(ns))) => {
                    opted_in.insert(ns.metadata.name.unwrap_or_default());
                }
                Some(Ok(watcher::Event::Delete(ns))) => {
                    opted_in.remove(&ns.metadata.name.unwrap_or_default());
                }
                Some(Err(err)) => tracing::warn!(error = %err, "observer: namespace watch failed, retrying"),
                None => return,
            },
            // Pods wait until the opted-in namespaces are known.
            event = pods.next(), if synced => match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    let Some((workload, warn)) =
                        unplanned.check(&pod, &opted_in, &planner, Instant::now())
                    else {
                        continue;
                    };
                    let name = pod.metadata.name.unwrap_or_default();
                    observed.series.unplanned(&workload.namespace);
                    tracing::warn!(namespace = %workload.namespace, pod = %name, "observer: a pod in an opted-in namespace has no drain plan");
                    if warn {
                        let recorder = recorder.clone();
                        tokio::spawn(async move {
                            let (event, reference) = unplanned_warning(&workload, &name);
                            if let Err(err) = recorder.publish(&event, &reference).await {
                                tracing::warn!(error = %err, "observer: cannot publish the Event");
                            }
                        });
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => tracing::warn!(error = %err, "observer: pod watch failed, retrying"),
                None => return,
            },
        }
    }
}

/// The Warning on the workload of a pod created without a drain plan.
pub fn unplanned_warning(workload: &Workload, pod: &str) -> (Event, ObjectReference) {
    let event = Event {
        type_: EventType::Warning,
        reason: "CreatedWithoutDrainPlan".into(),
        note: Some(format!(
            "pod {pod} runs without a drain plan although its namespace opted in (drain.io/inject=enabled): it was created while drain-webhook was unreachable, or before the opt-in; its shutdown may drop requests. Recreate it (kubectl rollout restart) so the webhook plans it"
        )),
        action: "Admit".into(),
        secondary: None,
    };
    (event, reference(workload))
}

fn reference(workload: &Workload) -> ObjectReference {
    ObjectReference {
        api_version: Some(workload.api_version.clone()),
        kind: Some(workload.kind.clone()),
        name: Some(workload.name.clone()),
        namespace: Some(workload.namespace.clone()),
        ..ObjectReference::default()
    }
}

fn report(observed: &Observed, recorder: &Recorder, outcome: Outcome) {
    match outcome {
        Outcome::Malformed(reason) => observed.series.malformed(reason),
        Outcome::Counted {
            workload,
            record,
            warn,
        } => {
            observed.series.drain(&workload.namespace, &record);
            if warn {
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    let (event, reference) = cap_warning(&workload, &record);
                    if let Err(err) = recorder.publish(&event, &reference).await {
                        tracing::warn!(error = %err, workload = %workload.name, "observer: cannot publish the Event");
                    }
                });
            }
        }
    }
}

/// The Warning on the workload whose pod's hold ran into its cap with traffic arriving.
pub fn cap_warning(workload: &Workload, record: &DrainRecord) -> (Event, ObjectReference) {
    let seconds = |ms: u64| format!("{}.{:01}", ms / 1000, (ms % 1000) / 100);
    let last = record
        .last_arrival_ms
        .map_or_else(String::new, |ms| format!(", the last at {} s", seconds(ms)));
    let note = format!(
        "the load balancer kept sending for {} s after deletion ({} connections or requests after the {} s floor{last}): the hold hit its cap; raise drain.io/max-delay or use a drain.io/profile",
        seconds(record.end_ms),
        record.after_floor,
        seconds(record.floor_ms),
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "DrainHitCap".into(),
        note: Some(note),
        action: "Drain".into(),
        secondary: None,
    };
    (event, reference(workload))
}
