//! drain-webhook: plans pod shutdowns so that no request is lost, and serves the plan as a
//! Kubernetes mutating admission webhook.
//!
//! Layout follows the data flow: `annotations` + `settings` -> `plan` (pure) -> `patch`
//! (JSONPatch against the original object) -> `mutate` (the one entry point both the
//! admission server and the offline CLI call). `helper` is the code of the drain-helper
//! binary and builds without the `webhook` feature.
//!
//! DESIGN's letters and the code's names for them:
//!
//! | letter | meaning | annotation | flag | in the plan | in the helper |
//! | --- | --- | --- | --- | --- | --- |
//! | D | the floor: traffic may arrive until then | `drain.io/delay` | `--delay` | `Plan::delay`, `SignalWindow::floor` (in `Timing::Helper`) | `--delay`, `SignalWindow::floor` |
//! | Q | quiet window that ends the hold | `drain.io/quiet` | `--quiet` | `Plan::quiet`, `HoldArgs::quiet` (in `Wait::Hold`) | `--quiet`, `HoldArgs::quiet` |
//! | M | the hold's cap | `drain.io/max-delay` | `--max-delay` | `Plan::max_delay`, `HoldArgs::cap` (in `Wait::Hold`) | `--hold-max`, `HoldArgs::cap` |
//! | S | the front proxy's head start on the app | `drain.io/stagger` | `--stagger` | `Plan::stagger`, `SignalWindow::stagger` | `--stagger`, `SignalWindow::stagger` |
//! | B | time every container keeps after its signal | `drain.io/shutdown-budget` | `--shutdown-budget` | `Plan::shutdown_budget` | part of `--max` (latest signal + B) |
//! | L | the load balancer's lag (measured, not set) | | | | the hold follows it |
//!
//! `--max` (`PlannedHook::max_seconds`, `PrestopArgs::max`) is the helper's own bound, not M.
#![deny(unsafe_code)]

pub mod drain_record;
pub mod duration;
pub mod helper;

#[cfg(feature = "webhook")]
pub mod admission;
#[cfg(feature = "webhook")]
pub mod annotations;
#[cfg(feature = "webhook")]
pub mod audit;
#[cfg(feature = "webhook")]
pub mod capabilities;
#[cfg(feature = "webhook")]
pub mod check;
#[cfg(feature = "webhook")]
pub mod cli;
#[cfg(feature = "webhook")]
pub mod cluster;
#[cfg(feature = "webhook")]
pub mod limits;
#[cfg(feature = "webhook")]
pub mod metrics;
#[cfg(feature = "webhook")]
pub mod mutate;
#[cfg(feature = "webhook")]
pub mod observe;
#[cfg(feature = "webhook")]
pub mod offline;
#[cfg(feature = "webhook")]
pub mod patch;
#[cfg(feature = "webhook")]
pub mod plan;
#[cfg(feature = "webhook")]
pub mod pod;
#[cfg(feature = "webhook")]
pub mod profiles;
#[cfg(feature = "webhook")]
pub mod qos;
#[cfg(feature = "webhook")]
pub mod served;
#[cfg(feature = "webhook")]
pub mod server;
#[cfg(feature = "webhook")]
pub mod settings;
#[cfg(feature = "webhook")]
pub mod tls;
