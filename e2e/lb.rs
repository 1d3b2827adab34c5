//! The emulated slow load balancer: it learns a Service's backends from its EndpointSlices and
//! applies every change L seconds after it happened (cloud load balancers and ingress
//! controllers do the same, late by their own propagation time).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};

/// Backends as seen `delay` after the fact. Times are offsets from a common start, so the
/// logic is a pure function of the observations and the clock reading passed in.
#[derive(Debug)]
pub struct DelayedEndpoints {
    delay: Duration,
    current: BTreeSet<SocketAddr>,
    pending: VecDeque<(Duration, BTreeSet<SocketAddr>)>,
    /// How many observed changes have been applied (for the report).
    pub applied: u64,
}

impl DelayedEndpoints {
    /// `initial`: what a load balancer that has been running for a while already routes to.
    pub fn new(delay: Duration, initial: BTreeSet<SocketAddr>) -> Self {
        DelayedEndpoints {
            delay,
            current: initial,
            pending: VecDeque::new(),
            applied: 0,
        }
    }

    /// The set of ready backends changed to `set` at `at`; applied from `at + delay` on.
    pub fn observe(&mut self, at: Duration, set: BTreeSet<SocketAddr>) {
        self.pending.push_back((at + self.delay, set));
    }

    /// The backends routed to at `now`: the latest observation that is at least `delay` old.
    pub fn current(&mut self, now: Duration) -> &BTreeSet<SocketAddr> {
        while self.pending.front().is_some_and(|(due, _)| *due <= now) {
            let (_, set) = self.pending.pop_front().expect("front checked");
            if set != self.current {
                self.applied += 1;
            }
            self.current = set;
        }
        &self.current
    }
}

/// The addresses a load balancer sends to: every endpoint not marked unready, on `port`.
/// (`ready` unset means ready, as the EndpointSlice API says.)
pub fn ready_addresses<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    port: u16,
) -> BTreeSet<SocketAddr> {
    let mut out = BTreeSet::new();
    for slice in slices {
        for endpoint in &slice.endpoints {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<IpAddr>() {
                    out.insert(SocketAddr::new(ip, port));
                }
            }
        }
    }
    out
}

/// Shared between the watch task and the request loop.
pub type Shared = Arc<Mutex<DelayedEndpoints>>;

/// The slices a watch has delivered. During a relist (Init .. InitDone) the old state stays
/// in force, as a load balancer keeps routing while it resyncs.
#[derive(Default)]
struct Slices {
    current: BTreeMap<String, EndpointSlice>,
    relisting: Option<BTreeMap<String, EndpointSlice>>,
}

impl Slices {
    /// Applies one watch event; true when `current` may have changed.
    fn apply(&mut self, event: watcher::Event<EndpointSlice>) -> bool {
        match event {
            watcher::Event::Init => {
                self.relisting = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(slice) => {
                self.relisting
                    .get_or_insert_with(BTreeMap::new)
                    .insert(slice_name(&slice), slice);
                false
            }
            watcher::Event::InitDone => {
                self.current = self.relisting.take().unwrap_or_default();
                true
            }
            watcher::Event::Apply(slice) => {
                self.current.insert(slice_name(&slice), slice);
                true
            }
            watcher::Event::Delete(slice) => {
                self.current.remove(&slice_name(&slice));
                true
            }
        }
    }
}

/// Watches the EndpointSlices of `service` in `namespace` (the only API access the load
/// client needs: list and watch endpointslices there) and feeds every change to the view.
/// Returns after the first complete list, which is the view's starting state.
pub async fn watch(
    client: kube::Client,
    namespace: &str,
    service: &str,
    port: u16,
    delay: Duration,
    start: Instant,
) -> anyhow::Result<Shared> {
    let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
    let config =
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut slices = Slices::default();
    loop {
        match events.next().await {
            Some(Ok(event)) => {
                let done = matches!(event, watcher::Event::InitDone);
                slices.apply(event);
                if done {
                    break;
                }
            }
            Some(Err(error)) => eprintln!("drain-e2e load: endpointslice watch: {error}"),
            None => anyhow::bail!("the endpointslice watch ended before its first list"),
        }
    }
    let initial = ready_addresses(slices.current.values(), port);
    eprintln!(
        "drain-e2e load: lb starts with {} backends, applies changes {delay:?} late",
        initial.len()
    );
    let view: Shared = Arc::new(Mutex::new(DelayedEndpoints::new(delay, initial)));
    let feed = view.clone();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    if slices.apply(event) {
                        let set = ready_addresses(slices.current.values(), port);
                        feed.lock()
                            .expect("view lock")
                            .observe(start.elapsed(), set);
                    }
                }
                Err(error) => eprintln!("drain-e2e load: endpointslice watch: {error}"),
            }
        }
    });
    Ok(view)
}

fn slice_name(slice: &EndpointSlice) -> String {
    slice.metadata.name.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

    fn addrs(list: &[&str]) -> BTreeSet<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }
    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn changes_apply_delay_late() {
        let mut view = DelayedEndpoints::new(s(5.0), addrs(&["10.0.0.1:80", "10.0.0.2:80"]));
        view.observe(s(10.0), addrs(&["10.0.0.2:80"]));
        view.observe(s(12.0), addrs(&["10.0.0.2:80", "10.0.0.3:80"]));
        assert_eq!(
            *view.current(s(0.0)),
            addrs(&["10.0.0.1:80", "10.0.0.2:80"])
        );
        assert_eq!(
            *view.current(s(14.999)),
            addrs(&["10.0.0.1:80", "10.0.0.2:80"])
        );
        assert_eq!(*view.current(s(15.0)), addrs(&["10.0.0.2:80"]));
        assert_eq!(*view.current(s(16.0)), addrs(&["10.0.0.2:80"]));
        assert_eq!(
            *view.current(s(17.0)),
            addrs(&["10.0.0.2:80", "10.0.0.3:80"])
        );
        assert_eq!(view.applied, 2);
    }

    #[test]
    fn a_late_read_applies_every_due_change_in_order() {
        let mut view = DelayedEndpoints::new(s(5.0), addrs(&["10.0.0.1:80"]));
        view.observe(s(1.0), addrs(&[]));
        view.observe(s(2.0), addrs(&["10.0.0.9:80"]));
        view.observe(s(30.0), addrs(&["10.0.0.1:80"]));
        assert_eq!(*view.current(s(20.0)), addrs(&["10.0.0.9:80"]));
        assert_eq!(view.applied, 2);
    }

    #[test]
    fn zero_delay_applies_at_once() {
        let mut view = DelayedEndpoints::new(Duration::ZERO, addrs(&["10.0.0.1:80"]));
        view.observe(s(3.0), addrs(&["10.0.0.2:80"]));
        assert_eq!(*view.current(s(3.0)), addrs(&["10.0.0.2:80"]));
    }

    fn named(name: &str, ips: &[&str]) -> EndpointSlice {
        let mut slice = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: ips.iter().map(|ip| endpoint(ip, Some(true))).collect(),
            ..Default::default()
        };
        slice.metadata.name = Some(name.into());
        slice
    }

    #[test]
    fn a_relist_keeps_the_old_state_until_it_is_complete() {
        let mut slices = Slices::default();
        assert!(!slices.apply(watcher::Event::Init));
        assert!(!slices.apply(watcher::Event::InitApply(named("a", &["10.0.0.1"]))));
        assert!(slices.apply(watcher::Event::InitDone));
        assert!(slices.apply(watcher::Event::Apply(named("b", &["10.0.0.2"]))));
        let all = addrs(&["10.0.0.1:80", "10.0.0.2:80"]);
        assert_eq!(ready_addresses(slices.current.values(), 80), all);
        // A relist (after a watch error) in which slice a is gone.
        assert!(!slices.apply(watcher::Event::Init));
        assert!(!slices.apply(watcher::Event::InitApply(named("b", &["10.0.0.2"]))));
        assert_eq!(ready_addresses(slices.current.values(), 80), all);
        assert!(slices.apply(watcher::Event::InitDone));
        assert_eq!(
            ready_addresses(slices.current.values(), 80),
            addrs(&["10.0.0.2:80"])
        );
        assert!(slices.apply(watcher::Event::Delete(named("b", &[]))));
        assert!(ready_addresses(slices.current.values(), 80).is_empty());
    }

    fn endpoint(ip: &str, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_ready_endpoints_of_all_slices() {
        let a = EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: vec![
                endpoint("10.0.0.1", Some(true)),
                endpoint("10.0.0.2", Some(false)),
                endpoint("10.0.0.3", None),
            ],
            ..Default::default()
        };
        let b = EndpointSlice {
            address_type: "IPv6".into(),
            endpoints: vec![endpoint("fd00::7", Some(true)), endpoint("not-an-ip", None)],
            ..Default::default()
        };
        assert_eq!(
            ready_addresses([&a, &b], 8080),
            addrs(&["10.0.0.1:8080", "10.0.0.3:8080", "[fd00::7]:8080"])
        );
    }
}
