//! The contract with drain-helper: a planned container's hook as the helper's own typed
//! arguments, rendered by the helper's code and checked with its parser.

use std::cell::RefCell;
use std::ffi::OsString;
use std::rc::Rc;

use serde_json::value::RawValue;

use super::{ChainedHook, ContainerPlan, HELPER_PATH, HookKind};
use crate::helper::args::{Command, PrestopArgs, parse};
use crate::helper::signal::parse_signal;

impl ContainerPlan {
    /// The helper's own typed arguments for this container's preStop hook, when it runs the
    /// helper: the patch renders them with the helper's [`PrestopArgs::to_args`], so what the
    /// webhook writes is what the helper parses.
    pub fn helper_args(&self) -> Option<PrestopArgs> {
        let planned = self.planned_hook()?;
        let window = planned.window()?;
        if self.hook != Some(HookKind::Helper) {
            return None;
        }
        Some(PrestopArgs {
            notify: self.notify.clone(),
            wait_idle: self.wait_idle.clone(),
            // Always set for a planned helper hook (the latest signal plus B); were it ever
            // missing, the latest signal still never cuts the hold short, where the helper's
            // own default (delay + 30) would cut an adaptive hold at D + 30 < M.
            max: planned.max_seconds.unwrap_or(window.latest()),
            // The planner's signal names come from a fixed list the helper knows (tested).
            signal: self.signal.and_then(|name| parse_signal(name).ok()),
            fast_signal: self.fast_signal().and_then(|name| parse_signal(name).ok()),
            then_http_get: match &self.chained {
                Some(ChainedHook::HttpGet { url }) => Some(url.clone()),
                _ => None,
            },
            then_exec: match &self.chained {
                Some(ChainedHook::Exec { command }) => {
                    Some(command.iter().map(std::ffi::OsString::from).collect())
                }
                _ => None,
            },
            window: window.clone(),
            record: self.record_args(),
        })
    }

    /// The proxy's fast stop, sent by the helper when `--max` runs out while the proxy still
    /// drains after its graceful signal (long streams keep a graceful stop going): SIGTERM,
    /// which nginx, haproxy and envoy take as "stop now". Only where the graceful signal is
    /// another one (docs/decisions.md, "Long streams").
    pub fn fast_signal(&self) -> Option<&'static str> {
        self.signal
            .filter(|graceful| *graceful != "SIGTERM" && self.hook == Some(HookKind::Helper))
            .map(|_| "SIGTERM")
    }

    /// Why drain-helper's own parser would refuse this container's command, if it would.
    pub fn helper_rejection(&self) -> Option<String> {
        checked(self.helper_args()?).rejection.clone()
    }

    /// The whole preStop exec command: the installed helper, then its arguments.
    pub fn helper_command(&self) -> Option<Vec<String>> {
        Some(checked(self.helper_args()?).command.clone())
    }

    /// [`ContainerPlan::helper_command`] as a JSON array, as the patch writes it; `None` also
    /// in the case (which plain strings cannot reach) where it does not serialize.
    pub fn helper_command_json(&self) -> Option<Box<RawValue>> {
        checked(self.helper_args()?).json.clone()
    }
}

/// A helper hook as drain-helper reads it: rendered by the helper's code, checked with its
/// parser.
#[derive(Debug)]
struct CheckedCommand {
    /// The installed helper, then its arguments.
    command: Vec<String>,
    /// `command` as JSON text.
    json: Option<Box<RawValue>>,
    /// Why the helper's parser refuses the command, or reads it as other arguments.
    rejection: Option<String>,
}

/// How many distinct hooks each thread keeps checked: a pod's containers share a few (the
/// proxies', the apps'), and a workload's pods all have the same.
const CHECKED_KEPT: usize = 16;

/// The command and the verdict for `args`, kept per thread: both are pure functions of the
/// arguments, and rendering then parsing each hook (twice rendered: checked while planning,
/// written by the patch) was a fifth of a seed review (docs/benchmarks.md). Keyed by the whole
/// arguments, so a hook whose timings change after the check is rendered anew, never stale.
fn checked(args: PrestopArgs) -> Rc<CheckedCommand> {
    thread_local! {
        static KEPT: RefCell<Vec<(PrestopArgs, Rc<CheckedCommand>)>> =
            const { RefCell::new(Vec::new()) };
    }
    KEPT.with_borrow_mut(|kept| {
        if let Some((_, found)) = kept.iter().find(|(kept_args, _)| *kept_args == args) {
            return Rc::clone(found);
        }
        let found = Rc::new(check(&args));
        if kept.len() == CHECKED_KEPT {
            kept.remove(0);
        }
        kept.push((args, Rc::clone(&found)));
        found
    })
}

/// Renders `args` with the helper's own code and parses the rendering with the helper's own
/// parser.
fn check(args: &PrestopArgs) -> CheckedCommand {
    let words = args.to_args();
    let rendered: Vec<OsString> = words.iter().map(OsString::from).collect();
    let rejection = match parse(&rendered) {
        Ok(Command::Prestop(parsed)) if parsed == *args => None,
        Ok(_) => Some("drain-helper would read its planned command differently".into()),
        Err(err) => Some(format!(
            "drain-helper would refuse its planned command ({err})"
        )),
    };
    let mut command = Vec::with_capacity(words.len() + 1);
    command.push(HELPER_PATH.to_owned());
    command.extend(words);
    let json = serde_json::value::to_raw_value(&command).ok();
    CheckedCommand {
        command,
        json,
        rejection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helper::args::{HoldArgs, SignalWindow, Wait};
    use crate::plan::{Action, PlannedHook, Role, Timing};

    /// Without a planned `--max` (never the case for a planned helper hook), the helper's
    /// bound is the latest signal: never its own default delay + 30, which would cut an
    /// adaptive hold at D + 30 < M (issue 27).
    #[test]
    fn a_missing_max_never_cuts_the_hold_short() {
        let mut proxy = ContainerPlan::new("nginx", false, 0, Role::Proxy);
        proxy.hook = Some(HookKind::Helper);
        let hold = HoldArgs {
            quiet: 3,
            cap: 60,
            probe_periods: vec![],
            migrate: None,
        };
        let window = SignalWindow {
            floor: 10,
            wait: Wait::Hold(hold),
            stagger: 0,
        };
        let mut planned = PlannedHook {
            timing: Timing::Helper(window),
            max_seconds: None,
        };
        proxy.action = Action::Planned(planned.clone());
        assert_eq!(proxy.helper_args().unwrap().max, 60);
        planned.max_seconds = Some(88);
        proxy.action = Action::Planned(planned);
        assert_eq!(proxy.helper_args().unwrap().max, 88);
        assert_eq!(proxy.helper_rejection(), None);
    }
}
