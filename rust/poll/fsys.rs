//! The few filesystem calls of a poll pass, and the stat signature that gates reads.
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::rc::RC_READ_LIMIT;

/// A file or folder younger than this is re-read whatever its stat says: mtime
/// granularity is coarse, so a same-size rewrite within one tick keeps the stat.
pub const RECENT_NS: i64 = 2_000_000_000;

/// What one `stat` tells about a file: a changed signature means "read it again".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sig {
    pub mtime_ns: i64,
    pub size: u64,
    pub ino: u64,
}

impl Sig {
    fn of(meta: &fs::Metadata) -> Self {
        let mtime_ns = meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec());
        Sig {
            mtime_ns,
            size: meta.size(),
            ino: meta.ino(),
        }
    }

    /// True when the mtime is too recent (or in the future) to trust the signature.
    pub fn is_recent(&self, now_ns: i64) -> bool {
        now_ns.saturating_sub(self.mtime_ns) < RECENT_NS
    }
}

/// `stat` (following links, like `os.stat`); None for any failure.
pub fn stat(path: &Path) -> Option<Sig> {
    fs::metadata(path).ok().map(|m| Sig::of(&m))
}

/// Open a file for reading and `fstat` it: one path walk instead of two when the
/// file is then read. Non-blocking, so a FIFO in place of a file cannot hang a pass.
pub fn open_stat(path: &Path) -> Option<(File, Sig)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let sig = Sig::of(&file.metadata().ok()?);
    Some((file, sig))
}

/// True when `stat` succeeds.
pub fn exists(path: &Path) -> bool {
    fs::metadata(path).is_ok()
}

/// Wall-clock time in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// The first bytes (at most RC_READ_LIMIT) of a file; None when it cannot be read.
/// Stops at `size` bytes (what `fstat` said) instead of reading again to see EOF:
/// a file that grew since is just seen as it was (torn), and retried later.
pub fn read_head(mut file: File, size: u64, buf: &mut [u8; RC_READ_LIMIT]) -> Option<usize> {
    let want = usize::try_from(size).unwrap_or(usize::MAX).min(buf.len());
    let mut filled = 0;
    while filled < want {
        match file.read(&mut buf[filled..want]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    Some(filled)
}

/// A folder held open, to remove its entries by name (`unlinkat`): no walk of
/// the folder's path per entry, and no path to build.
#[derive(Debug)]
pub struct Folder(File);

impl Folder {
    pub fn open(path: &Path) -> Option<Self> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            .ok()
            .map(Folder)
    }

    /// Remove the file `name` (one path component), ignoring every failure.
    pub fn unlink_quietly(&self, name: &OsStr) {
        let bytes = name.as_bytes();
        let mut buf = [0u8; 256];
        if bytes.is_empty()
            || bytes.len() >= buf.len()
            || bytes.iter().any(|&b| b == 0 || b == b'/')
        {
            return; // not one entry of this folder: never ours
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: `buf` is NUL-terminated (zeroed past `bytes`) and outlives the call;
        // the descriptor is owned by `self.0` and open.
        unsafe {
            libc::unlinkat(self.0.as_raw_fd(), buf.as_ptr().cast(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::testdir::TempDir;

    #[test]
    fn stat_and_read() {
        let d = TempDir::new("fsys");
        let p = d.path().join("f");
        assert!(stat(&p).is_none());
        fs::write(&p, b"12\n").unwrap();
        let s = stat(&p).unwrap();
        assert_eq!(s.size, 3);
        assert!(s.is_recent(now_ns()));
        assert!(!s.is_recent(s.mtime_ns + RECENT_NS));
        let mut buf = [0u8; RC_READ_LIMIT];
        let (file, sig) = open_stat(&p).unwrap();
        assert_eq!(sig, s);
        assert_eq!(read_head(file, sig.size, &mut buf), Some(3));
        assert_eq!(&buf[..3], b"12\n");
        let (file, _) = open_stat(&p).unwrap();
        assert_eq!(read_head(file, 1, &mut buf), Some(1));
        let (dir, sig) = open_stat(d.path()).unwrap();
        assert_eq!(read_head(dir, sig.size, &mut buf), None); // a folder opens, but does not read
        fs::remove_file(&p).unwrap();
        assert!(!exists(&p));
    }

    #[test]
    fn folder_unlinks_by_name() {
        let d = TempDir::new("folder");
        fs::write(d.path().join("a.1.e0"), b"").unwrap();
        fs::create_dir(d.path().join("sub")).unwrap();
        let f = Folder::open(d.path()).unwrap();
        f.unlink_quietly(OsStr::new("a.1.e0"));
        f.unlink_quietly(OsStr::new("a.1.e0")); // already gone
        f.unlink_quietly(OsStr::new("sub")); // a folder stays
        f.unlink_quietly(OsStr::new("")); // nothing to do
        f.unlink_quietly(OsStr::new("../x"));
        assert!(!exists(&d.path().join("a.1.e0")));
        assert!(d.path().join("sub").is_dir());
        assert!(Folder::open(&d.path().join("a.1.e0")).is_none());
    }
}
