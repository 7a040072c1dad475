//! SIGCHLD as something `poll` can wait for (the self-pipe trick), and the
//! executor's own signal dispositions.
//!
//! The handler writes one byte to a non-blocking pipe; the loop polls its read
//! end and drains it. One executor per process: the handler's pipe is global.
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::{Error, Result};

/// Write end of the live pipe, or -1.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_sig: libc::c_int) {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: errno is thread-local and restored, write is async-signal-safe;
        // a full pipe (EAGAIN) already means "wake up".
        unsafe {
            let errno = libc::__errno_location();
            let saved = *errno;
            libc::write(fd, b"c".as_ptr().cast(), 1);
            *errno = saved;
        }
    }
}

/// The installed handler and its pipe; dropping it puts the old handler back.
pub struct ChildWake {
    read: OwnedFd,
    _write: OwnedFd,
    old: libc::sigaction,
}

impl ChildWake {
    pub fn install() -> Result<Self> {
        let mut fds = [-1; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 returns.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(sys("pipe2"));
        }
        // SAFETY: pipe2 succeeded: both are fresh descriptors owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if WAKE_FD
            .compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(Error::InvalidArgument(
                "an executor is already running in this process".into(),
            ));
        }
        let handler: extern "C" fn(libc::c_int) = on_sigchld;
        // SAFETY: zeroed sigaction is a valid "no flags, empty mask" value; the
        // handler only touches the atomic and the pipe.
        let mut old = unsafe { MaybeUninit::<libc::sigaction>::zeroed().assume_init() };
        let r = unsafe {
            let mut act: libc::sigaction = MaybeUninit::zeroed().assume_init();
            act.sa_sigaction = handler as libc::sighandler_t;
            act.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(libc::SIGCHLD, &act, &mut old)
        };
        if r != 0 {
            WAKE_FD.store(-1, Ordering::SeqCst);
            return Err(sys("sigaction(SIGCHLD)"));
        }
        Ok(ChildWake {
            read,
            _write: write,
            old,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Empty the pipe (the loop reaps whatever the bytes were about).
    pub fn drain(&self) {
        let mut buf = [0u8; 256];
        // SAFETY: reading into a local buffer of the given length.
        while unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

impl Drop for ChildWake {
    fn drop(&mut self) {
        // SAFETY: `old` is what sigaction gave back at install.
        unsafe { libc::sigaction(libc::SIGCHLD, &self.old, std::ptr::null_mut()) };
        WAKE_FD.store(-1, Ordering::SeqCst);
    }
}

/// SIGXFSZ back to default (Python ignores it and jobs would inherit that);
/// SIGPIPE ignored, so a dead reader gives EPIPE instead of ending the executor.
pub fn set_dispositions() {
    // SAFETY: plain dispositions, no handler code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

pub fn sys(call: &'static str) -> Error {
    Error::Sys {
        call,
        source: io::Error::last_os_error(),
    }
}
