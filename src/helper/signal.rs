//! Signals: names, sending, and waiting for a process that is not our child to exit.

use std::io;

/// Signals accepted by name, with and without the `SIG` prefix (case-insensitive).
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("TERM", libc::SIGTERM),
    ("WINCH", libc::SIGWINCH),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
];

/// Highest signal number Linux knows (`SIGRTMAX`).
const MAX_SIGNAL: i32 = 64;

/// Parses `SIGQUIT`, `quit`, `TERM`, `3` into a signal number.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i32>() {
            Ok(number) if (1..=MAX_SIGNAL).contains(&number) => Ok(number),
            _ => Err(format!(
                "signal number {text} is not between 1 and {MAX_SIGNAL}"
            )),
        };
    }
    // Compared without case instead of upper-cased into a new string: the planner parses the
    // signals of every planned hook on every review (docs/benchmarks.md).
    let bare = match text.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("SIG") => &text[3..],
        _ => text,
    };
    NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(bare))
        .map(|&(_, number)| number)
        .ok_or_else(|| format!("unknown signal \"{text}\" (use e.g. SIGQUIT, SIGTERM or a number)"))
}

/// `SIGQUIT` for 3, `signal 40` for numbers without a name here.
pub fn signal_name(number: i32) -> String {
    NAMES
        .iter()
        .find(|&&(_, n)| n == number)
        .map(|(name, _)| format!("SIG{name}"))
        .unwrap_or_else(|| format!("signal {number}"))
}

/// `kill(pid, signal)`; `signal` 0 only checks that the process exists and may be signalled.
/// Refuses `pid <= 0`, which would address process groups or every process.
#[allow(unsafe_code)]
pub fn send_signal(pid: i32, signal: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal a process group",
        ));
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; pid > 0 so it
    // addresses exactly one process, and an invalid signal number only yields EINVAL.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ignores SIGPIPE, as Rust's normal `main` does (the helper's C `main` skips that setup), so
/// a log write to a pipe nobody reads fails with EPIPE instead of killing the helper. Children
/// spawned by `std::process::Command` get the default disposition back.
#[allow(unsafe_code)]
pub fn ignore_sigpipe() {
    // SAFETY: signal(2) with SIG_IGN installs no handler code of ours; it only changes the
    // disposition of SIGPIPE for this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Blocks SIGTERM and SIGINT for [`wait_for_termination`]. PID 1 of a container ignores every
/// signal it has no handler for (pid_namespaces(7)), so a sleeping installer with the default
/// disposition would outlive its SIGTERM until the grace period's SIGKILL; a blocked signal is
/// queued instead, never dropped (the kernel's `sig_ignored` skips blocked signals), as PID 1
/// and otherwise. Call it before anything else, so a signal during the install is kept too.
#[allow(unsafe_code)]
pub fn block_termination() -> io::Result<libc::sigset_t> {
    // SAFETY: the set is a plain C struct initialised by sigemptyset before any other use;
    // sigprocmask only reads it. The helper is single-threaded, so the process mask is the
    // thread's.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }
}

/// Sleeps until one of the signals [`block_termination`] blocked arrives; returns it.
#[allow(unsafe_code)]
pub fn wait_for_termination(set: &libc::sigset_t) -> io::Result<i32> {
    let mut signal = 0;
    loop {
        // SAFETY: `set` was initialised by block_termination and `signal` is a valid i32 to
        // write to; sigwait touches nothing else.
        let rc = unsafe { libc::sigwait(set, &mut signal) };
        match rc {
            0 => return Ok(signal),
            libc::EINTR => continue,
            err => return Err(io::Error::from_raw_os_error(err)),
        }
    }
}

/// Whether `pid` is gone: no such process, or a zombie (it has exited and only waits for its
/// parent to reap it, which we are not), or the `/proc/PID/stat` state says dead.
pub fn has_exited(pid: i32) -> bool {
    match send_signal(pid, 0) {
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => return true,
        _ => {}
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => matches!(stat_state(&stat), Some('Z' | 'X' | 'x')),
        // kill says it exists but /proc has no entry: /proc is not mounted or is another
        // namespace's; kill is the authority then.
        Err(_) => false,
    }
}

/// The state letter of a `/proc/PID/stat` line. The command name in parentheses may itself
/// contain spaces and parentheses, so the state is found after the last `)`.
pub fn stat_state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse_signal("SIGQUIT"), Ok(libc::SIGQUIT));
        assert_eq!(parse_signal("QUIT"), Ok(libc::SIGQUIT));
        assert_eq!(parse_signal("quit"), Ok(libc::SIGQUIT));
        assert_eq!(parse_signal("SigTerm"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGINT"), Ok(libc::SIGINT));
        assert_eq!(parse_signal("USR1"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("SIGUSR2"), Ok(libc::SIGUSR2));
        assert_eq!(parse_signal("HUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("sigHup"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("3"), Ok(3));
        assert_eq!(parse_signal("15"), Ok(15));
        assert_eq!(parse_signal("64"), Ok(64));
    }

    #[test]
    fn rejects_unknown_signals() {
        for bad in [
            "",
            "0",
            "65",
            "-3",
            "SIG",
            "SIGFOO",
            "QUITT",
            "3x",
            "99999999999",
            "+3",
            // Only ASCII letters compare without case: no Unicode folding of a long s, and a
            // multi-byte first character is never split.
            "\u{17f}igquit",
            "\u{e9}QUIT",
            "SIGSIGTERM",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_signals() {
        assert_eq!(signal_name(libc::SIGQUIT), "SIGQUIT");
        assert_eq!(signal_name(40), "signal 40");
    }

    #[test]
    fn reads_state_from_stat() {
        assert_eq!(stat_state("1 (nginx) S 0 1 1 0 -1"), Some('S'));
        assert_eq!(stat_state("42 (sleep) Z 1 42 42"), Some('Z'));
        assert_eq!(stat_state("7 (a) b) (c) R 1 2"), Some('R'));
        assert_eq!(stat_state("7 (x y"), None);
        assert_eq!(stat_state("7 (x)"), None);
        assert_eq!(stat_state(""), None);
    }

    #[test]
    fn refuses_process_groups() {
        assert!(send_signal(0, 0).is_err());
        assert!(send_signal(-1, 0).is_err());
    }

    #[test]
    fn own_process_is_alive() {
        assert!(!has_exited(std::process::id() as i32));
    }
}
