//! Any JSON as a Pod, through `mutate_pod` (plan + patch). The invariants:
//! tests/common/invariants.rs, `check_mutation` (patch applies, result is a Pod, idempotent,
//! grace never shortened, front proxies never after apps).
#![no_main]

use drain_webhook::mutate::PodContext;
use drain_webhook::settings::{HookMode, Settings};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the cluster version and the hook mode; the rest is the pod.
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(pod) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let kube = match selector % 3 {
        0 => None,
        1 => "1.28".parse().ok(),
        _ => "1.34".parse().ok(),
    };
    let settings = Settings {
        hook_mode: match (selector / 3) % 3 {
            0 => HookMode::Auto,
            1 => HookMode::Sleep,
            _ => HookMode::Helper,
        },
        ..Settings::default()
    };
    let ctx = PodContext {
        settings: &settings,
        namespace_annotations: None,
        kube_version: kube,
        // The first byte's low bit: every node mounts image volumes, or unknown.
        image_volume_nodes: data.first().is_some_and(|b| b & 1 == 1).then_some(true),
    };
    if let Err(violation) = invariants::check_mutation(&pod, &ctx) {
        panic!("invariant violated: {violation}");
    }
});
