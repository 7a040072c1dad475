//! Waiting for jobs, signalling their process groups, and the timeout clock.
//!
//! An ended job is first only looked at (`WNOWAIT`): while it is a zombie its
//! pid, and so its process-group id, cannot be reused, which makes it safe to
//! SIGKILL the group (whatever the job left behind in it) before reaping.
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::mem::MaybeUninit;
use std::time::Instant;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    pub pid: u32,
    /// Exit code, or 128 + signal.
    pub rc: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

/// One ended child, still unreaped; None when no child has ended (or none is left).
pub fn peek_ended() -> io::Result<Option<Ended>> {
    loop {
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: `info` is zeroed, writable, and only read after the call.
        let r = unsafe { libc::waitid(libc::P_ALL, 0, info.as_mut_ptr(), flags) };
        if r != 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(err),
            }
        }
        // SAFETY: waitid filled it in (or left it zeroed: pid 0, nothing ended).
        let info = unsafe { info.assume_init() };
        // SAFETY: for a SIGCHLD-kind siginfo these union fields are the ones set.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid <= 0 {
            return Ok(None);
        }
        let signal = match info.si_code {
            libc::CLD_KILLED | libc::CLD_DUMPED => Some(status),
            _ => None,
        };
        let rc = match signal {
            Some(sig) => 128 + sig,
            None => status,
        };
        return Ok(Some(Ended {
            pid: pid as u32,
            rc,
            signal,
        }));
    }
}

/// Reap a child that `peek_ended` reported.
pub fn reap(pid: u32) {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    loop {
        // SAFETY: as in peek_ended; the result is not read.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                info.as_mut_ptr(),
                libc::WEXITED,
            )
        };
        if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Send `sig` to the process group led by `pid`; a group already gone is fine.
pub fn kill_group(pid: u32, sig: i32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 1 {
            // SAFETY: plain syscall; a negative pid names the process group.
            unsafe { libc::kill(-pid, sig) };
        }
    }
}

/// A signal's name as bash's `kill -l` prints it, without "SIG".
pub fn signal_name(sig: i32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let i = usize::try_from(sig).ok()?.checked_sub(1)?;
    NAMES.get(i).copied()
}

/// What happens at a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    /// The job's timeout: SIGTERM to its group.
    Timeout,
    /// The grace after that: SIGKILL to its group.
    Kill,
}

/// An entry of the clock; `serial` tells a job from a later one with the same pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alarm {
    pub at: Instant,
    pub serial: u64,
    pub pid: u32,
    pub due: Due,
}

/// The deadlines of all jobs, earliest first. Entries of ended jobs are not
/// removed: they are dropped when they come due (the serial no longer matches).
#[derive(Debug, Default)]
pub struct Clock(BinaryHeap<Reverse<Alarm>>);

impl Clock {
    pub fn set(&mut self, alarm: Alarm) {
        self.0.push(Reverse(alarm));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.0.peek().map(|Reverse(a)| a.at)
    }

    /// Take one alarm that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Alarm> {
        match self.0.peek() {
            Some(Reverse(a)) if a.at <= now => self.0.pop().map(|Reverse(a)| a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_as_bash_prints_them() {
        assert_eq!(signal_name(9), Some("KILL"));
        assert_eq!(signal_name(15), Some("TERM"));
        assert_eq!(signal_name(31), Some("SYS"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(34), None);
        assert_eq!(signal_name(-1), None);
    }

    #[test]
    fn clock_gives_due_alarms_in_order() {
        let t0 = Instant::now();
        let mut c = Clock::default();
        let at = |ms| t0 + Duration::from_millis(ms);
        for (ms, serial) in [(30, 1), (10, 2), (20, 3)] {
            c.set(Alarm {
                at: at(ms),
                serial,
                pid: 1,
                due: Due::Timeout,
            });
        }
        assert_eq!(c.next(), Some(at(10)));
        assert_eq!(c.pop_due(at(5)), None);
        let got: Vec<u64> = std::iter::from_fn(|| c.pop_due(at(25)))
            .map(|a| a.serial)
            .collect();
        assert_eq!(got, [2, 3]);
        assert_eq!(c.next(), Some(at(30)));
    }
}
