//! The contract with drain-helper: a planned container's hook as the helper's own typed
//! arguments, rendered by the helper's code and checked with its parser.

use super::{Action, ChainedHook, ContainerPlan, HELPER_PATH, HookKind, Timing};
use crate::helper::args::{Command, FollowArgs, HoldArgs, PrestopArgs, parse};
use crate::helper::signal::parse_signal;

impl ContainerPlan {
    /// The helper's own typed arguments for this container's preStop hook, when it runs the
    /// helper: the patch renders them with the helper's [`PrestopArgs::to_args`], so what the
    /// webhook writes is what the helper parses.
    pub fn helper_args(&self) -> Option<PrestopArgs> {
        if self.action != Action::Planned || self.hook != Some(HookKind::Helper) {
            return None;
        }
        let fixed = self.pre_stop_seconds.unwrap_or(0);
        let (delay, hold, follow, stagger) = match self.timing.clone() {
            None => (fixed, None, None, 0),
            Some(
                Timing::Fixed { seconds }
                | Timing::Recorded {
                    earliest: seconds, ..
                },
            ) => (seconds, None, None, 0),
            Some(Timing::Adaptive {
                floor,
                quiet,
                cap,
                stagger,
                probe_periods,
            }) => {
                let hold = HoldArgs {
                    quiet,
                    cap,
                    probe_periods,
                    migrate: self.migrate.clone(),
                };
                (floor, Some(hold), None, stagger)
            }
            Some(Timing::AfterProxy {
                floor,
                ports,
                until,
                stagger,
            }) => (floor, None, Some(FollowArgs { ports, until }), stagger),
        };
        Some(PrestopArgs {
            delay,
            notify: self.notify.clone(),
            wait_idle: self.wait_idle.clone(),
            // Always set for a planned helper hook (the latest signal plus B); were it ever
            // missing, the latest signal still never cuts the hold short, where the helper's
            // own default (delay + 30) would cut an adaptive hold at D + 30 < M.
            max: self
                .hook_max_seconds
                .or(self.latest_signal())
                .unwrap_or(delay),
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
            hold,
            follow,
            stagger,
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
        let args = self.helper_args()?;
        let rendered: Vec<std::ffi::OsString> =
            args.to_args().into_iter().map(Into::into).collect();
        match parse(&rendered) {
            Ok(Command::Prestop(parsed)) if parsed == args => None,
            Ok(_) => Some("drain-helper would read its planned command differently".into()),
            Err(err) => Some(format!(
                "drain-helper would refuse its planned command ({err})"
            )),
        }
    }

    /// The whole preStop exec command: the installed helper, then its arguments.
    pub fn helper_command(&self) -> Option<Vec<String>> {
        let args = self.helper_args()?;
        let mut command = vec![HELPER_PATH.to_owned()];
        command.extend(args.to_args());
        Some(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Role;

    /// Without a planned `--max` (never the case for a planned helper hook), the helper's
    /// bound is the latest signal: never its own default delay + 30, which would cut an
    /// adaptive hold at D + 30 < M (issue 27).
    #[test]
    fn a_missing_max_never_cuts_the_hold_short() {
        let mut proxy = ContainerPlan::new("nginx", false, 0, Role::Proxy);
        proxy.action = Action::Planned;
        proxy.hook = Some(HookKind::Helper);
        proxy.pre_stop_seconds = Some(10);
        proxy.timing = Some(Timing::Adaptive {
            floor: 10,
            quiet: 3,
            cap: 60,
            stagger: 0,
            probe_periods: vec![],
        });
        assert_eq!(proxy.helper_args().unwrap().max, 60);
        proxy.hook_max_seconds = Some(88);
        assert_eq!(proxy.helper_args().unwrap().max, 88);
        assert_eq!(proxy.helper_rejection(), None);
    }
}
