//! `--then-exec`'s child process, with posix_spawnp(3) and waitpid(2) directly:
//! `std::process::Command` alone costs about 47 KiB of the helper's 1 MiB budget (its
//! builder, environment map and fork paths), the helper needs none of it.

use std::ffi::{CString, OsString, c_char, c_int};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::ptr;

#[allow(unsafe_code)]
unsafe extern "C" {
    /// The process environment (POSIX); passed on unchanged.
    static environ: *const *mut c_char;
}

/// A started command; it is ours to reap.
pub struct Child {
    pub pid: libc::pid_t,
}

/// Starts `command` (looked up in PATH when it has no `/`) with the helper's environment and
/// stdio. SIGPIPE goes back to its default in the child (the helper ignores it, and an ignored
/// signal would stay ignored across exec), as `std::process::Command` does.
#[allow(unsafe_code)]
pub fn spawn(command: &[OsString]) -> io::Result<Child> {
    let args = command
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains NUL"))?;
    if args.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no command"));
    }
    let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(ptr::null_mut());
    let mut pid: libc::pid_t = 0;
    // SAFETY: the attribute object and signal set are initialised before use and destroyed
    // after; argv is a NULL-terminated array of NUL-terminated strings that outlive the call
    // (`args`), and environ is the process's own environment.
    let rc = unsafe {
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        let mut default: libc::sigset_t = std::mem::zeroed();
        libc::posix_spawnattr_init(&mut attr);
        libc::sigemptyset(&mut default);
        libc::sigaddset(&mut default, libc::SIGPIPE);
        libc::posix_spawnattr_setsigdefault(&mut attr, &default);
        libc::posix_spawnattr_setflags(&mut attr, libc::POSIX_SPAWN_SETSIGDEF as libc::c_short);
        let rc = libc::posix_spawnp(
            &mut pid,
            args[0].as_ptr(),
            ptr::null(),
            &attr,
            argv.as_ptr(),
            environ.cast(),
        );
        libc::posix_spawnattr_destroy(&mut attr);
        rc
    };
    match rc {
        0 => Ok(Child { pid }),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

impl Child {
    /// The exit code a shell would report, once the child has exited (it is then reaped).
    #[allow(unsafe_code)]
    pub fn try_wait(&self) -> io::Result<Option<i32>> {
        let mut status: c_int = 0;
        // SAFETY: waitpid writes only to `status`; the pid is our own unreaped child.
        match unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } {
            0 => Ok(None),
            -1 => Err(io::Error::last_os_error()),
            _ => Ok(Some(shell_code(status))),
        }
    }

    /// SIGKILL, then reap.
    #[allow(unsafe_code)]
    pub fn kill_and_wait(&self) {
        let mut status: c_int = 0;
        // SAFETY: plain syscalls on our own unreaped child; `status` is ours.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}

/// A wait status as a shell reports it: the exit code, or 128 + the signal that ended it.
pub fn shell_code(status: c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(shell_code(0), 0);
        assert_eq!(shell_code(3 << 8), 3);
        assert_eq!(shell_code(libc::SIGKILL), 128 + 9);
    }

    #[test]
    fn runs_a_command_and_reports_its_code() {
        let child = spawn(&["sh".into(), "-c".into(), "exit 7".into()]).unwrap();
        let code = loop {
            if let Some(code) = child.try_wait().unwrap() {
                break code;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(code, 7);
    }

    #[test]
    fn a_missing_command_is_not_found() {
        let err = spawn(&["/nonexistent/command".into()]).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(spawn(&[]).is_err());
    }
}
