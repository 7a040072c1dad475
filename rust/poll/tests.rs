//! Core poller behaviour on real temp folders (no Python).
use std::fs;
use std::path::Path;

use super::testdir::TempDir;
use super::{fsys, Change, Poller};
use crate::error::Error;

fn rundir(n: u64) -> TempDir {
    let d = TempDir::new("poller");
    fs::create_dir(d.path().join("events")).unwrap();
    for i in 0..n {
        fs::create_dir_all(d.path().join(format!("jobs/{i}"))).unwrap();
    }
    d
}

fn put(root: &Path, rel: &str, data: &[u8]) {
    let tmp = root.join(format!("{rel}.tmp"));
    fs::write(&tmp, data).unwrap();
    fs::rename(tmp, root.join(rel)).unwrap();
}

fn ch(index: u64, trial: u64, rc: Option<i32>) -> Change {
    Change {
        index,
        trial,
        started: true,
        rc,
    }
}

fn events(root: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(root.join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn new_checks_the_rundir() {
    let d = rundir(0);
    assert!(matches!(
        Poller::new(d.path().join("nope"), 1),
        Err(Error::Io { .. })
    ));
    put(d.path(), "file", b"");
    let Err(Error::Io { source, .. }) = Poller::new(d.path().join("file"), 1) else {
        panic!()
    };
    assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory);
    assert!(matches!(
        Poller::new(d.path(), 0),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn watch_replace_unwatch() {
    let d = rundir(3);
    let mut p = Poller::new(d.path(), 1).unwrap();
    p.watch(&[(0, 1), (1, 1), (2, 1), (1, 1)]);
    assert_eq!(p.len(), 3);
    p.watch(&[(1, 2)]);
    let mut w: Vec<_> = p.watched().collect();
    w.sort();
    assert_eq!(w, [(0, 1), (1, 2), (2, 1)]);
    p.unwatch(&[0, 7]);
    assert_eq!(p.len(), 2);
    put(d.path(), "jobs/1/rc.1", b"0\n"); // old trial: ignored
    put(d.path(), "jobs/1/rc.2", b"4\n");
    put(d.path(), "jobs/2/rc.1", b"5\n");
    assert_eq!(p.sweep(), [ch(1, 2, Some(4)), ch(2, 1, Some(5))]);
    assert!(p.is_empty());
}

#[test]
fn events_flow() {
    let d = rundir(4);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&[(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(p.poll_events(), []);
    put(r, "jobs/0/start.1", b"h 1 1 1\n");
    put(r, "events/0.1.s", b"");
    put(r, "jobs/1/start.1", b"h 1 1 1\n");
    put(r, "jobs/1/rc.1", b"3\n");
    put(r, "events/1.1.s", b"");
    put(r, "events/1.1.e", b"");
    put(r, "events/2.9.e", b""); // not the watched trial
    put(r, "events/junk", b"");
    assert_eq!(p.poll_events(), [ch(0, 1, None), ch(1, 1, Some(3))]);
    assert_eq!(events(r), Vec::<String>::new());
    assert_eq!(p.len(), 3);
    // job 3 never sent an event: only the sweep finds it
    put(r, "jobs/3/rc.1", b"-9\n");
    assert_eq!(p.poll_events(), []);
    assert_eq!(p.sweep(), [ch(3, 1, Some(-9))]);
}

#[test]
fn end_event_before_rc_is_visible_is_rechecked() {
    let d = rundir(1);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&[(0, 1)]);
    put(r, "events/0.1.e", b"");
    put(r, "jobs/0/rc.1", b"1"); // torn: no newline yet
    assert_eq!(p.poll_events(), []);
    assert!(p.recheck.contains(&0));
    put(r, "jobs/0/rc.1", b"12\n");
    assert_eq!(p.poll_events(), [ch(0, 1, Some(12))]);
    assert!(p.recheck.is_empty());
}

#[test]
fn bad_rc_files_never_report() {
    let d = rundir(7);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&(0..7).map(|i| (i, 0)).collect::<Vec<_>>());
    put(r, "jobs/0/rc.0", b"");
    put(r, "jobs/1/rc.0", b"garbage\n");
    put(r, "jobs/2/rc.0", b"4");
    put(r, "jobs/3/rc.0", b"\xff\xfe\n");
    fs::create_dir(r.join("jobs/4/rc.0")).unwrap();
    put(r, "jobs/5/rc.0", b"99999999999\n");
    let fifo = std::ffi::CString::new(r.join("jobs/6/rc.0").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0); // must not hang a pass
    for _ in 0..2 {
        assert_eq!(p.sweep(), []);
    }
    assert_eq!(p.len(), 7);
    put(r, "jobs/2/rc.0", b"6\n"); // same size as "4": caught by the inode
    assert_eq!(p.sweep(), [ch(2, 0, Some(6))]);
}

#[test]
fn old_unusable_file_is_not_reread_until_it_changes() {
    let d = rundir(1);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&[(0, 0)]);
    put(r, "jobs/0/rc.0", b"x\n");
    assert_eq!(p.sweep(), []);
    let slot = p.slots[&0];
    assert!(p.jobs[slot].rc_sig.is_some());
    let far = fsys::now_ns() + 10 * fsys::RECENT_NS;
    assert!(p.jobs[slot].observe(far).is_empty());
}

#[test]
fn threads_agree_with_one_thread() {
    let n = 5000;
    let d = rundir(n);
    let r = d.path();
    for i in (0..n).step_by(7) {
        put(r, &format!("jobs/{i}/start.0"), b"h\n");
    }
    for i in (0..n).step_by(11) {
        put(
            r,
            &format!("jobs/{i}/rc.0"),
            format!("{}\n", i % 5).as_bytes(),
        );
    }
    let jobs: Vec<_> = (0..n).map(|i| (i, 0)).collect();
    let mut one = Poller::new(r, 1).unwrap();
    let mut two = Poller::new(r, 2).unwrap();
    one.watch(&jobs);
    two.watch(&jobs);
    let a = one.sweep();
    assert_eq!(a, two.sweep());
    assert_eq!(
        a.len(),
        (0..n).filter(|i| i % 7 == 0 || i % 11 == 0).count()
    );
    assert_eq!(one.len(), two.len());
    for i in (0..n).step_by(3) {
        put(r, &format!("events/{i}.0.e"), b"");
        put(r, &format!("jobs/{i}/rc.0"), b"0\n");
    }
    let e = two.poll_events();
    assert_eq!(
        e.len(),
        (0..n).filter(|i| i % 3 == 0 && i % 11 != 0).count()
    );
    assert_eq!(events(r), Vec::<String>::new());
    assert_eq!(one.sweep(), e);
}

#[test]
fn interrupted_events_pass_keeps_unhandled_entries() {
    let n = 9000; // more than one step
    let d = rundir(n);
    let r = d.path();
    let mut p = Poller::new(r, 2).unwrap();
    p.watch(&(0..n).map(|i| (i, 0)).collect::<Vec<_>>());
    for i in 0..n {
        put(r, &format!("events/{i}.0.s"), b"");
        put(r, &format!("jobs/{i}/start.0"), b"");
    }
    let mut pass = p.events_begin();
    assert!(!p.events_step(&mut pass));
    let first = p.events_finish(pass); // as if Ctrl-C arrived here
    assert_eq!(first.len(), 8192);
    assert_eq!(events(r).len(), (n - 8192) as usize);
    let rest = p.poll_events();
    assert_eq!(rest.len(), (n - 8192) as usize);
    assert!(events(r).is_empty());
    assert_eq!(p.poll_events(), []);
}

fn age(path: &Path, secs: u64) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    let f = fs::File::open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(old)).unwrap();
}

#[test]
fn unchanged_old_folder_is_not_listed() {
    let d = rundir(1);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&[(0, 0)]);
    age(&r.join("events"), 10);
    assert_eq!(p.poll_events(), []); // first pass: listed, signature kept
    let pass = p.events_begin();
    assert!(pass.listed.is_none() && pass.entries.is_empty());
    p.events_finish(pass);
    // an entry slipped in while the folder's mtime was put back: not seen (the stat gate)
    put(r, "jobs/0/start.0", b"");
    put(r, "events/0.0.s", b"");
    let sig = p.events_sig.unwrap();
    let f = fs::File::open(r.join("events")).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(sig.0 as u64);
    f.set_times(fs::FileTimes::new().set_modified(when))
        .unwrap();
    assert_eq!(p.poll_events(), []);
    // any real change of the folder is seen
    age(&r.join("events"), 5);
    assert_eq!(p.poll_events(), [ch(0, 0, None)]);
    assert!(events(r).is_empty());
}

#[test]
fn events_that_carry_their_news_are_not_followed_by_reads() {
    // no start or rc file exists: only the names can have told the poller
    let d = rundir(4);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&[(0, 1), (1, 1), (2, 1), (3, 1)]);
    put(r, "events/0.1.s", b"");
    put(r, "events/1.1.s", b"");
    put(r, "events/1.1.e143", b"");
    put(r, "events/2.1.e-15", b"");
    put(r, "events/3.0.e0", b""); // another trial: ignored, but consumed
    assert_eq!(
        p.poll_events(),
        [ch(0, 1, None), ch(1, 1, Some(143)), ch(2, 1, Some(-15))]
    );
    assert!(events(r).is_empty());
    assert!(p.recheck.is_empty());
    assert_eq!(p.watched().collect::<Vec<_>>(), [(0, 1), (3, 1)]);
    // a second start event of a started job is no news
    put(r, "events/0.1.s", b"");
    assert_eq!(p.poll_events(), []);
}

#[test]
fn an_rc_in_the_name_wins_over_a_bare_end_event() {
    let d = rundir(1);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&[(0, 2)]);
    put(r, "events/0.2.e", b"");
    put(r, "events/0.2.e7", b"");
    assert_eq!(p.poll_events(), [ch(0, 2, Some(7))]);
    assert!(p.recheck.is_empty() && p.is_empty());
}

#[test]
fn end_events_naming_different_rcs_leave_it_to_the_rc_file() {
    let d = rundir(1);
    let r = d.path();
    let mut p = Poller::new(r, 1).unwrap();
    p.watch(&[(0, 0)]);
    put(r, "events/0.0.e0", b"");
    put(r, "events/0.0.e3", b"");
    assert_eq!(p.poll_events(), []); // no rc file yet: wait for it
    put(r, "jobs/0/rc.0", b"3\n");
    assert_eq!(p.poll_events(), [ch(0, 0, Some(3))]);
}
