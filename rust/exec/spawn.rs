//! Starting one job's process: fork/exec through std's `Command`, no shell.
//!
//! The job leads its own process group (so it can be stopped whole), reads
//! /dev/null, and gets the executor's environment plus the record's. A cgroup
//! is entered in the child between fork and exec, without allocating there.
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cgroup::Cgroups;
use super::Record;

/// Where programs named without a '/' were found, per PATH value: a search of a
/// long PATH costs a failed exec per folder before the one that holds the
/// program, for every job (bash keeps the same kind of table).
#[derive(Debug, Default)]
pub struct Programs {
    found: HashMap<(OsString, OsString), PathBuf>,
    /// the cgroups jobs are started in
    pub cgroups: Cgroups,
}

impl Programs {
    /// The path to exec for `name` with this PATH; None: let exec search it.
    fn find(&mut self, name: &OsStr, path: &OsStr) -> Option<PathBuf> {
        if name.as_bytes().contains(&b'/') || name.is_empty() {
            return None;
        }
        let key = (path.to_os_string(), name.to_os_string());
        if let Some(hit) = self.found.get(&key) {
            return Some(hit.clone());
        }
        for dir in std::env::split_paths(path) {
            if !dir.is_absolute() {
                return None; // found relative to the job's cwd: not ours to cache
            }
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                self.found.insert(key, candidate.clone());
                return Some(candidate);
            }
        }
        None
    }

    fn forget(&mut self, name: &OsStr, path: &OsStr) {
        self.found
            .remove(&(path.to_os_string(), name.to_os_string()));
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-ended path.
    let ok = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
    ok && path.is_file()
}

/// Start `rec`'s argv with these stdout and stderr; the job's pid.
pub fn spawn(
    rec: &Record,
    stdout: Stdio,
    stderr: Stdio,
    programs: &mut Programs,
) -> io::Result<u32> {
    let Some(name) = rec.argv.first() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let path = rec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let found = programs.find(name, &path);
    let result = match &rec.cgroup {
        Some(procs) => {
            let mut io = Some((stdout, stderr));
            let fast = programs.cgroups.inside(procs, || {
                let (out, err) = io.take().expect("started once");
                start(rec, found.as_deref(), out, err, false)
            });
            match (fast, io) {
                (Some(result), _) => result,
                (None, Some((out, err))) => start(rec, found.as_deref(), out, err, true),
                (None, None) => unreachable!("started, or not"),
            }
        }
        None => start(rec, found.as_deref(), stdout, stderr, false),
    };
    if found.is_some()
        && result
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
    {
        programs.forget(name, &path); // gone since: searched again next time
    }
    result
}

/// `enter_in_child`: the child enters the record's cgroup before its exec (a
/// real fork of the executor: the slow way, when `Cgroups::inside` cannot be used).
fn start(
    rec: &Record,
    found: Option<&Path>,
    stdout: Stdio,
    stderr: Stdio,
    enter_in_child: bool,
) -> io::Result<u32> {
    let (program, args) = rec.argv.split_first().expect("argv checked by the caller");
    let mut cmd = match found {
        Some(path) => {
            let mut cmd = Command::new(path);
            cmd.arg0(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .envs(rec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    if let Some(cwd) = &rec.cwd {
        cmd.current_dir(cwd);
    }
    if let Some(cgroup) = rec.cgroup.as_ref().filter(|_| enter_in_child) {
        // Prepared here: the child may not allocate between fork and exec.
        let procs = CString::new(cgroup.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the closure only makes async-signal-safe calls (open, write,
        // close) on memory prepared before the fork, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                enter_cgroup(&procs);
                Ok(())
            });
        }
    }
    // Dropping the Child neither waits for nor kills it: the reaper owns it now.
    Ok(cmd.spawn()?.id())
}

/// Write "0" to a cgroup.procs file: the calling process moves there. A failure
/// leaves the job where it is (uncontained), as the wrapper would.
fn enter_cgroup(procs: &CString) {
    // SAFETY: `procs` is a valid NUL-ended string; the fd is closed before return.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
}

/// The rc of a job that could not be started: 127 when the program was not
/// found, 126 otherwise (as a shell says).
pub fn spawn_rc(err: &io::Error) -> i32 {
    match err.kind() {
        io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks after boot); "0"
/// when unreadable. Read from after the command name, which may hold anything.
pub fn start_ticks(pid: u32) -> String {
    let Ok(stat) = fs::read(format!("/proc/{pid}/stat")) else {
        return "0".into();
    };
    let after = match stat.iter().rposition(|&b| b == b')') {
        Some(i) => &stat[i + 1..],
        None => return "0".into(),
    };
    String::from_utf8_lossy(after)
        .split_ascii_whitespace()
        .nth(19) // field 3 is the first after the name
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("0")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::testdir::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn programs_are_found_once_per_path_and_searched_again_when_gone() {
        let d = TempDir::new("exec-programs");
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("tool"), "not executable").unwrap();
        fs::write(b.join("tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(b.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        let mut programs = Programs::default();
        let name = OsStr::new("tool");
        assert_eq!(programs.find(name, &path), Some(b.join("tool")));
        fs::remove_file(b.join("tool")).unwrap();
        assert_eq!(programs.find(name, &path), Some(b.join("tool")), "kept");
        programs.forget(name, &path);
        assert_eq!(programs.find(name, &path), None);
        assert_eq!(
            programs.find(OsStr::new("./tool"), &path),
            None,
            "a path is not searched"
        );
        let relative = std::env::join_paths(["rel", b.to_str().unwrap()]).unwrap();
        assert_eq!(
            programs.find(name, &relative),
            None,
            "relative PATH: exec searches"
        );
    }
}
