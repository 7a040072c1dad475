//! One watched job: its pre-built paths, what was already reported, and the
//! two-phase check (observe: read-only, may run on any thread; apply: serial).
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::fsys::{self, Sig};
use super::rc::{parse_rc, RC_READ_LIMIT};

/// A change to report: `(index, trial, started, rc)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub index: u64,
    pub trial: u64,
    pub started: bool,
    pub rc: Option<i32>,
}

#[derive(Debug)]
pub(crate) struct Job {
    pub index: u64,
    pub trial: u64,
    /// A start was already reported.
    pub started: bool,
    /// Stat of the last rc file found unusable (not re-read while unchanged).
    pub rc_sig: Option<Sig>,
    pub rc_path: PathBuf,
    pub start_path: PathBuf,
}

/// What one look at a job's files found (no state changed yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Obs {
    pub rc: Option<i32>,
    /// An rc file exists but gave nothing: remember its stat.
    pub unusable: Option<Sig>,
    pub start_seen: bool,
}

impl Obs {
    pub fn is_empty(&self) -> bool {
        *self == Obs::default()
    }
}

fn child(dir: &Path, name: &str, trial: u64) -> PathBuf {
    let mut s = OsString::with_capacity(dir.as_os_str().len() + name.len() + 22);
    s.push(dir.as_os_str());
    s.push("/");
    s.push(name);
    s.push(trial.to_string());
    PathBuf::from(s)
}

impl Job {
    pub fn new(jobs_dir: &Path, index: u64, trial: u64) -> Self {
        let metadir = jobs_dir.join(index.to_string());
        Job {
            index,
            trial,
            started: false,
            rc_sig: None,
            rc_path: child(&metadir, "rc.", trial),
            start_path: child(&metadir, "start.", trial),
        }
    }

    /// Look at the job's files: the rc file is opened and `fstat`-ed (one path
    /// walk: a missing file costs what a `stat` would), and read only when its
    /// signature changed or is too recent to trust; then one stat of the start
    /// file while no start was reported.
    pub fn observe(&self, now_ns: i64) -> Obs {
        let mut obs = Obs::default();
        if let Some((file, sig)) = fsys::open_stat(&self.rc_path) {
            if self.rc_sig != Some(sig) || sig.is_recent(now_ns) {
                if sig.size == 0 {
                    obs.unusable = Some(sig);
                } else {
                    let mut buf = [0u8; RC_READ_LIMIT];
                    if let Some(n) = fsys::read_head(file, sig.size, &mut buf) {
                        match parse_rc(&buf[..n]) {
                            Some(rc) => {
                                obs.rc = Some(rc);
                                return obs;
                            }
                            None => obs.unusable = Some(sig),
                        }
                    }
                }
            }
        }
        if !self.started {
            obs.start_seen = fsys::exists(&self.start_path);
        }
        obs
    }

    /// Record an observation; the change to report, if any.
    pub fn apply(&mut self, obs: Obs) -> Option<Change> {
        if let Some(sig) = obs.unusable {
            self.rc_sig = Some(sig);
        }
        let change = |rc| Change {
            index: self.index,
            trial: self.trial,
            started: true,
            rc,
        };
        if let Some(rc) = obs.rc {
            return Some(change(Some(rc)));
        }
        if obs.start_seen && !self.started {
            self.started = true;
            return Some(change(None));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::testdir::TempDir;
    use std::fs;

    #[test]
    fn paths_are_prebuilt() {
        let j = Job::new(Path::new("/r/jobs"), 12, 3);
        assert_eq!(j.rc_path, Path::new("/r/jobs/12/rc.3"));
        assert_eq!(j.start_path, Path::new("/r/jobs/12/start.3"));
    }

    #[test]
    fn observe_then_apply() {
        let d = TempDir::new("state");
        let jobs = d.path().join("jobs");
        fs::create_dir_all(jobs.join("4")).unwrap();
        let mut j = Job::new(&jobs, 4, 1);
        let now = fsys::now_ns();
        assert!(j.observe(now).is_empty());
        fs::write(&j.start_path, b"h 1 1 1\n").unwrap();
        let c = j.apply(j.observe(now)).unwrap();
        assert_eq!((c.started, c.rc), (true, None));
        assert_eq!(j.apply(j.observe(now)), None);
        fs::write(&j.rc_path, b"garbage\n").unwrap();
        assert_eq!(j.apply(j.observe(now)), None);
        assert!(j.rc_sig.is_some());
        // an unchanged, old, unusable file is not read again
        let late = now + 10 * fsys::RECENT_NS;
        assert!(j.observe(late).is_empty());
        fs::write(j.rc_path.with_extension("tmp"), b"9\n").unwrap();
        fs::rename(j.rc_path.with_extension("tmp"), &j.rc_path).unwrap();
        assert_eq!(j.apply(j.observe(late)).unwrap().rc, Some(9));
    }
}
