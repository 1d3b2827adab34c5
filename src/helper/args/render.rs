//! Rendering typed helper arguments back into the command line the parser reads (the webhook
//! side of the contract; not built into the helper binary).

use super::{AfterInstall, Migrate, PrestopArgs, Wait};

/// A signal's name (`SIGHUP`), or its number when the helper has no name for it.
pub(super) fn signal_text(signal: i32) -> String {
    let name = crate::helper::signal::signal_name(signal);
    match name.starts_with("SIG") {
        true => name,
        false => signal.to_string(),
    }
}

/// The command line that [`parse`](super::parse) reads back as `Command::Install { dir, then }`.
/// `None`: the init container's `install DIR`, as every earlier version wrote it (an exit).
pub fn render_install(dir: &str, then: Option<AfterInstall>) -> Vec<String> {
    let mut words = vec!["install".to_owned(), dir.to_owned()];
    if let Some(then) = then {
        words.extend(["--then".to_owned(), then.as_str().to_owned()]);
    }
    words
}

impl PrestopArgs {
    /// The command line (after the program name) that [`parse`](super::parse) reads back as exactly these
    /// arguments: the webhook writes preStop hooks with it, so a hook it plans is one the helper
    /// accepts. `--max` is always written; `--then-exec` comes last, as the parser requires.
    pub fn to_args(&self) -> Vec<String> {
        use crate::duration::format_seconds;
        let mut args = vec![
            "prestop".to_owned(),
            "--delay".to_owned(),
            format_seconds(self.window.floor),
            "--max".to_owned(),
            format_seconds(self.max),
        ];
        for url in &self.notify {
            args.extend(["--notify".to_owned(), url.to_string()]);
        }
        if !self.wait_idle.is_empty() {
            let ports: Vec<String> = self.wait_idle.iter().map(u16::to_string).collect();
            args.extend(["--wait-idle".to_owned(), ports.join(",")]);
        }
        for (flag, signal) in [
            ("--signal", self.signal),
            ("--fast-signal", self.fast_signal),
        ] {
            let Some(signal) = signal else { continue };
            args.extend([flag.to_owned(), signal_text(signal)]);
        }
        if let Wait::Hold(hold) = &self.window.wait {
            args.extend([
                "--quiet".to_owned(),
                format_seconds(hold.quiet),
                "--hold-max".to_owned(),
                format_seconds(hold.cap),
            ]);
            if !hold.probe_periods.is_empty() {
                let periods: Vec<String> = hold
                    .probe_periods
                    .iter()
                    .map(|p| format_seconds(*p))
                    .collect();
                args.extend(["--probe-every".to_owned(), periods.join(",")]);
            }
            match &hold.migrate {
                Some(Migrate::Signal(signal)) => {
                    args.extend(["--migrate".to_owned(), signal_text(*signal)]);
                }
                Some(Migrate::Post(url)) => args.extend(["--migrate".to_owned(), url.to_string()]),
                None => {}
            }
        }
        if let Wait::Follow(follow) = &self.window.wait {
            let ports: Vec<String> = follow.ports.iter().map(u16::to_string).collect();
            args.extend([
                "--follow".to_owned(),
                ports.join(","),
                "--follow-until".to_owned(),
                format_seconds(follow.until),
            ]);
        }
        if self.window.stagger > 0 {
            args.extend(["--stagger".to_owned(), format_seconds(self.window.stagger)]);
        }
        if let Some(record) = &self.record {
            args.extend([
                "--record".to_owned(),
                record.path.to_string(),
                "--role".to_owned(),
                record.role.as_str().to_owned(),
            ]);
        }
        if let Some(url) = &self.then_http_get {
            args.extend(["--then-http-get".to_owned(), url.to_string()]);
        }
        if let Some(command) = &self.then_exec {
            args.extend(["--then-exec".to_owned(), "--".to_owned()]);
            args.extend(
                command
                    .iter()
                    .map(|word| word.to_string_lossy().into_owned()),
            );
        }
        args
    }
}
