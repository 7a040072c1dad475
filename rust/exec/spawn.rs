//! Starting one job's process: fork/exec through std's `Command`, no shell.
//!
//! The job leads its own process group (so it can be stopped whole), reads
//! /dev/null, and gets the executor's environment plus the record's. A cgroup
//! is entered in the child between fork and exec, without allocating there.
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::Record;

/// Start `rec`'s argv with these stdout and stderr; the job's pid.
pub fn spawn(rec: &Record, stdout: Stdio, stderr: Stdio) -> io::Result<u32> {
    let Some((program, args)) = rec.argv.split_first() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(rec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    if let Some(cwd) = &rec.cwd {
        cmd.current_dir(cwd);
    }
    if let Some(cgroup) = &rec.cgroup {
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
