//! `drain-helper install DIR`: copy the running binary to `DIR/drain-helper` atomically.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name of the installed binary inside DIR.
pub const INSTALLED_NAME: &str = "drain-helper";

/// Copies `source` to `dir/drain-helper`: the bytes go to a temporary file in `dir`, which is
/// fsynced, made mode 0755 and then renamed over the target, so a reader never sees a partial
/// binary. Returns the installed path and its size.
///
/// The installer runs as PID 1 of its container, so the temporary name is the same on every
/// restart (`.drain-helper.tmp.1`): one left by an install killed mid-copy is removed first,
/// else `create_new` would fail every restart after it (CrashLoopBackOff).
pub fn install_from(source: &Path, dir: &Path) -> io::Result<(PathBuf, u64)> {
    let target = dir.join(INSTALLED_NAME);
    let temp = dir.join(format!(".{INSTALLED_NAME}.tmp.{}", std::process::id()));
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = copy_then_rename(source, &temp, &target);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    let size = result?;
    // Make the rename itself durable; a directory that cannot be opened or synced (some
    // filesystems refuse) does not make the install fail.
    if let Ok(dir_handle) = File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok((target, size))
}

fn copy_then_rename(source: &Path, temp: &Path, target: &Path) -> io::Result<u64> {
    let mut input = File::open(source)?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(temp)?;
    let size = io::copy(&mut input, &mut output)?;
    output.sync_all()?;
    // Explicit, so the umask does not decide.
    output.set_permissions(fs::Permissions::from_mode(0o755))?;
    drop(output);
    fs::rename(temp, target)?;
    Ok(size)
}

/// Where the running binary can be read: `/proc/self/exe`, or `argv0` when /proc is not
/// mounted (an empty chroot) and argv0 is a path.
pub fn own_executable(argv0: Option<&OsStr>) -> PathBuf {
    let proc_exe = Path::new("/proc/self/exe");
    if File::open(proc_exe).is_ok() {
        return proc_exe.to_path_buf();
    }
    match argv0 {
        Some(arg) if Path::new(arg).components().count() > 1 => PathBuf::from(arg),
        _ => proc_exe.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_atomically_with_mode_0755() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"#!/bin/sh\necho hi\n").unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();

        let (path, size) = install_from(&source, &out).unwrap();
        assert_eq!(path, out.join("drain-helper"));
        assert_eq!(size, 18);
        assert_eq!(fs::read(&path).unwrap(), b"#!/bin/sh\necho hi\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        // Only the target is left behind, no temporary file.
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsStr::new("drain-helper").to_os_string()]);

        // Installing again replaces the file.
        fs::write(&source, b"v2").unwrap();
        install_from(&source, &out).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"v2");
    }

    /// An install killed mid-copy leaves its temporary file; as PID 1 the next run has the same
    /// name, and must still install.
    #[test]
    fn a_stale_temporary_file_from_a_killed_install_does_not_block_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"the binary").unwrap();
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let stale = out.join(format!(".drain-helper.tmp.{}", std::process::id()));
        fs::write(&stale, b"half a bin").unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o500)).unwrap();

        let (path, size) = install_from(&source, &out).unwrap();
        assert_eq!(
            (fs::read(&path).unwrap(), size),
            (b"the binary".to_vec(), 10)
        );
        assert!(!stale.exists(), "the stale temporary file is gone");
        assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
    }

    #[test]
    fn missing_dir_or_source_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(install_from(Path::new("/proc/self/exe"), &dir.path().join("nope")).is_err());
        assert!(install_from(&dir.path().join("missing"), dir.path()).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn own_executable_prefers_proc() {
        assert_eq!(
            own_executable(Some(OsStr::new("/x/drain-helper"))),
            Path::new("/proc/self/exe")
        );
    }
}
