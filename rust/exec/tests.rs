//! The executor driven over pipes, with real processes and temp folders.
//!
//! One executor at a time: its SIGCHLD handler and `waitid(P_ALL)` are process-wide.
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{run, Events, FdWriter};
use crate::poll::testdir::TempDir;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn pipe() -> (fs::File, fs::File) {
    let mut fds = [-1; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { (fs::File::from_raw_fd(fds[0]), fs::File::from_raw_fd(fds[1])) }
}

/// Feed `records` to an executor, close its input, and return all it wrote.
fn drive(records: Vec<u8>, grace: f64) -> String {
    drive_then(records, Duration::ZERO, Vec::new(), grace)
}

/// As `drive`, with `later` fed `delay` after `records`.
fn drive_then(records: Vec<u8>, delay: Duration, later: Vec<u8>, grace: f64) -> String {
    drive_with(records, delay, later, grace, Events::Always)
}

fn drive_with(
    records: Vec<u8>,
    delay: Duration,
    later: Vec<u8>,
    grace: f64,
    events: Events,
) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (in_r, mut in_w) = pipe();
    let (mut out_r, out_w) = pipe();
    let exec = std::thread::spawn(move || {
        let out: OwnedFd = out_w.into();
        use std::os::fd::AsRawFd;
        let rc = run(
            in_r.as_fd(),
            FdWriter(out.as_raw_fd()),
            super::grace(grace).unwrap(),
            events,
        );
        drop(out);
        rc
    });
    let feeder = std::thread::spawn(move || {
        in_w.write_all(&records).unwrap();
        if !later.is_empty() {
            std::thread::sleep(delay);
            in_w.write_all(&later).unwrap();
        }
    });
    let mut text = String::new();
    out_r.read_to_string(&mut text).unwrap();
    feeder.join().unwrap();
    assert_eq!(exec.join().unwrap().unwrap(), 0);
    text
}

/// One record, built with the defaults of a direct job.
struct Rec {
    index: u64,
    mode: &'static str,
    meta: PathBuf,
    events: PathBuf,
    cwd: String,
    timeout: &'static str,
    stamp: &'static str,
    argv: Vec<String>,
    env: Vec<String>,
}

impl Rec {
    fn direct(d: &Path, index: u64, argv: &[&str]) -> Self {
        fs::create_dir_all(d.join("events")).unwrap();
        fs::create_dir_all(d.join("jobs")).unwrap(); // the runner makes the metadir's parents
        Rec {
            index,
            mode: "direct",
            meta: d.join(format!("jobs/{index}")),
            events: d.join("events"),
            cwd: String::new(),
            timeout: "",
            stamp: "",
            argv: argv.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let (meta, events) = match self.mode {
            "direct" => (self.meta.to_str().unwrap(), self.events.to_str().unwrap()),
            _ => ("", ""),
        };
        let label = if self.timeout.is_empty() {
            String::new()
        } else {
            format!("{}s", self.timeout)
        };
        let mut parts = vec![
            "J".to_string(),
            self.index.to_string(),
            "0".into(),
            self.mode.into(),
        ];
        parts.extend([
            meta.into(),
            events.into(),
            self.cwd.clone(),
            self.timeout.into(),
            label,
            "".into(),
            self.stamp.into(),
        ]);
        parts.push(self.argv.len().to_string());
        parts.extend(self.argv.iter().cloned());
        parts.push(self.env.len().to_string());
        parts.extend(self.env.iter().cloned());
        parts.iter().flat_map(|p| p.bytes().chain([0])).collect()
    }

    fn file(&self, name: &str) -> String {
        fs::read_to_string(self.meta.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

fn events(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(d.join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// The output without the pid and ticks of `s` lines (they vary).
fn lines(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| match l.split(' ').collect::<Vec<_>>()[..] {
            ["s", i, t, pid, ticks] => {
                assert!(
                    pid.parse::<u32>().is_ok() && ticks.parse::<u64>().is_ok(),
                    "{l}"
                );
                format!("s {i} {t}{}", if pid == "0" { " 0 0" } else { "" })
            }
            _ => l.to_string(),
        })
        .collect()
}

#[test]
fn direct_jobs_write_exact_files() {
    let d = TempDir::new("exec-direct");
    let a = Rec::direct(d.path(), 1, &["true"]);
    let mut b = Rec::direct(d.path(), 2, &["sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    b.stamp = "f00d";
    let out = drive([a.bytes(), b.bytes()].concat(), 1.0);
    let got = lines(&out);
    assert_eq!(got[..2], ["s 1 0", "s 2 0"]);
    let mut ends = got[2..].to_vec();
    ends.sort();
    assert_eq!(ends, ["e 1 0 0", "e 2 0 3"]);
    assert_eq!(a.file("rc.0"), "0\n\n");
    assert_eq!(b.file("rc.0"), "3\n\n");
    assert_eq!(b.file("stdout.0"), "hi\n");
    assert_eq!(b.file("stderr.0"), "oops\n");
    assert_eq!(a.file("stdout.0"), "");
    let start = b.file("start.0");
    let pid = out.lines().nth(1).unwrap().split(' ').nth(3).unwrap();
    let parts: Vec<&str> = start.trim_end().split(' ').collect();
    assert_eq!(parts.len(), 4, "{start:?}");
    assert_eq!(parts[3], "f00d");
    assert_eq!(
        a.file("start.0").split(' ').count(),
        3,
        "no stamp: three words"
    );
    assert_eq!(parts[0], super::files::hostname());
    assert_eq!(parts[1], pid);
    let (secs, micros) = parts[2].split_once('.').unwrap();
    assert!(secs.len() >= 10 && micros.len() == 6 && micros.bytes().all(|c| c.is_ascii_digit()));
    assert_eq!(events(d.path()), ["1.0.e0", "1.0.s", "2.0.e3", "2.0.s"]);
    assert!(!b.meta.join("rc.0.tmp").exists());
}

#[test]
fn a_timeout_terms_the_job() {
    let d = TempDir::new("exec-timeout");
    let mut r = Rec::direct(d.path(), 0, &["sleep", "5"]);
    r.timeout = "0.3";
    let t0 = Instant::now();
    let out = drive(r.bytes(), 0.5);
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(lines(&out), ["s 0 0", "e 0 0 143"]);
    assert_eq!(r.file("rc.0"), "143\ntimed out after 0.3s\n");
    assert_eq!(
        r.file("stderr.0"),
        "xqdecl: timed out after 0.3s (rc 143)\n"
    );
    assert_eq!(events(d.path()), ["0.0.e143", "0.0.s"]);
}

#[test]
fn a_job_that_ignores_term_is_killed_after_the_grace() {
    let d = TempDir::new("exec-kill");
    let mut r = Rec::direct(d.path(), 0, &["sh", "-c", "trap '' TERM; sleep 5; exit 0"]);
    r.timeout = "0.3";
    let t0 = Instant::now();
    let out = drive(r.bytes(), 0.5);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(lines(&out), ["s 0 0", "e 0 0 137"]);
    assert_eq!(r.file("rc.0"), "137\ntimed out after 0.3s\n");
}

#[test]
fn a_cancel_terms_the_job_and_kills_it_after_the_grace() {
    let d = TempDir::new("exec-cancel");
    let stubborn = Rec::direct(d.path(), 0, &["sh", "-c", "trap '' TERM; sleep 5; exit 0"]);
    let polite = Rec::direct(d.path(), 1, &["sleep", "5"]);
    let cancel = b"C\x000\x000\x00C\x001\x000\x00C\x007\x000\x00".to_vec(); // 7: no such job
    let t0 = Instant::now();
    let records = [stubborn.bytes(), polite.bytes()].concat();
    let out = drive_then(records, Duration::from_millis(300), cancel, 0.5);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(lines(&out), ["s 0 0", "s 1 0", "e 1 0 143", "e 0 0 137"]);
    assert_eq!(polite.file("rc.0"), "143\nterminated by SIGTERM\n");
    assert_eq!(stubborn.file("rc.0"), "137\nterminated by SIGTERM\n");
    assert_eq!(
        polite.file("stderr.0"),
        "xqdecl: terminated by SIGTERM (rc 143)\n"
    );
}

#[test]
fn a_signal_is_named_in_stderr() {
    let d = TempDir::new("exec-signal");
    let r = Rec::direct(d.path(), 0, &["sh", "-c", "kill -USR1 $$"]);
    assert_eq!(lines(&drive(r.bytes(), 1.0)), ["s 0 0", "e 0 0 138"]);
    assert_eq!(
        r.file("stderr.0"),
        "xqdecl: the command ended with status 138 (signal SIGUSR1)\n"
    );
    assert_eq!(r.file("rc.0"), "138\n\n");
}

#[test]
fn jobs_that_cannot_start() {
    let d = TempDir::new("exec-fail");
    let missing = Rec::direct(d.path(), 0, &["no-such-program-xq"]);
    let mut nodir = Rec::direct(d.path(), 1, &["true"]);
    nodir.cwd = d.path().join("nowhere").to_str().unwrap().into();
    let out = drive([missing.bytes(), nodir.bytes()].concat(), 1.0);
    assert_eq!(
        lines(&out),
        ["s 0 0 0 0", "e 0 0 127", "s 1 0 0 0", "e 1 0 1"]
    );
    let why = "cannot run no-such-program-xq: No such file or directory";
    assert_eq!(missing.file("rc.0"), format!("127\n{why}\n"));
    assert_eq!(
        missing.file("stderr.0"),
        format!("xqdecl: {why} (rc 127)\n")
    );
    let why = format!("cannot enter the working directory {}", nodir.cwd);
    assert_eq!(nodir.file("rc.0"), format!("1\n{why}\n"));
    assert_eq!(nodir.file("stderr.0"), format!("xqdecl: {why} (rc 1)\n"));
    let own = std::process::id().to_string();
    assert_eq!(nodir.file("start.0").split(' ').nth(1), Some(own.as_str()));
    assert_eq!(events(d.path()), ["0.0.e127", "0.0.s", "1.0.e1", "1.0.s"]);
}

#[test]
fn what_the_job_left_in_its_group_is_killed() {
    let d = TempDir::new("exec-group");
    let r = Rec::direct(d.path(), 0, &["sh", "-c", "sleep 30 & echo $!"]);
    assert_eq!(lines(&drive(r.bytes(), 1.0)), ["s 0 0", "e 0 0 0"]);
    let pid = r.file("stdout.0").trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // gone, or a zombie waiting for its new parent to reap it
        let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .chars()
            .next();
        if matches!(state, None | Some('Z') | Some('X')) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background sleep {pid} lives on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn env_cwd_and_path_of_the_record() {
    let d = TempDir::new("exec-env");
    let bin = d.path().join("bin");
    fs::create_dir(&bin).unwrap();
    fs::write(
        bin.join("xq-tool"),
        "#!/bin/sh\necho \"tool $XQ_A $(pwd)\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(bin.join("xq-tool"), fs::Permissions::from_mode(0o755)).unwrap();
    let mut r = Rec::direct(d.path(), 0, &["xq-tool"]);
    r.cwd = bin.to_str().unwrap().into();
    r.env = vec![
        "XQ_A=1".into(),
        format!("PATH={}:/usr/bin:/bin", bin.display()),
        "XQ_A=2".into(),
    ];
    assert_eq!(lines(&drive(r.bytes(), 1.0)), ["s 0 0", "e 0 0 0"]);
    let here = fs::canonicalize(&bin).unwrap();
    assert_eq!(r.file("stdout.0"), format!("tool 2 {}\n", here.display()));
}

#[test]
fn wrapper_mode_writes_nothing() {
    let d = TempDir::new("exec-wrapper");
    let mut r = Rec::direct(d.path(), 4, &["sh", "-c", "echo lost; exit 5"]);
    r.mode = "wrapper";
    r.timeout = "0.1"; // direct mode only
    let mut bad = Rec::direct(d.path(), 5, &["/no/such/wrapper"]);
    bad.mode = "wrapper";
    let out = drive([r.bytes(), bad.bytes()].concat(), 1.0);
    assert_eq!(lines(&out)[..1], ["s 4 0"]);
    assert!(out.contains("e 4 0 5\n"));
    let failed = "! cannot run /no/such/wrapper: No such file or directory\ns 5 0 0 0\ne 5 0 127\n";
    assert!(out.contains(failed), "{out}");
    assert!(!r.meta.exists());
    assert!(events(d.path()).is_empty());
}

#[test]
fn many_jobs_at_once_report_exactly_once() {
    let d = TempDir::new("exec-many");
    let mut data = b"junk\0".to_vec();
    for i in 0..200 {
        data.extend(Rec::direct(d.path(), i, &["true"]).bytes());
    }
    let out = drive(data, 1.0);
    let got = lines(&out);
    assert!(
        got[0].starts_with("! malformed record: expected \"J\""),
        "{}",
        got[0]
    );
    let starts: Vec<String> = got
        .iter()
        .filter(|l| l.starts_with("s "))
        .cloned()
        .collect();
    let expect: Vec<String> = (0..200).map(|i| format!("s {i} 0")).collect();
    assert_eq!(starts, expect);
    let mut ends: Vec<String> = got
        .iter()
        .filter(|l| l.starts_with("e "))
        .cloned()
        .collect();
    ends.sort();
    let mut want: Vec<String> = (0..200).map(|i| format!("e {i} 0 0")).collect();
    want.sort();
    assert_eq!(ends, want);
    assert_eq!(got.len(), 401);
    assert_eq!(events(d.path()).len(), 400);
}

#[test]
fn while_its_lines_are_read_a_direct_job_leaves_no_event_files() {
    let d = TempDir::new("exec-heard");
    let a = Rec::direct(d.path(), 1, &["true"]);
    let b = Rec::direct(d.path(), 2, &["sh", "-c", "exit 4"]);
    let out = drive_with(
        [a.bytes(), b.bytes()].concat(),
        Duration::ZERO,
        Vec::new(),
        1.0,
        Events::WhenUnheard,
    );
    let mut got = lines(&out);
    got.sort();
    assert_eq!(got, ["e 1 0 0", "e 2 0 4", "s 1 0", "s 2 0"]);
    assert_eq!(b.file("rc.0"), "4\n\n");
    assert!(events(d.path()).is_empty(), "{:?}", events(d.path()));
}

#[test]
fn once_nobody_reads_its_lines_the_executor_leaves_event_files() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("exec-unheard");
    let early = Rec::direct(d.path(), 1, &["true"]);
    let late = Rec::direct(d.path(), 2, &["sh", "-c", "sleep 0.4; exit 5"]);
    let (in_r, mut in_w) = pipe();
    let (out_r, out_w) = pipe();
    let exec = std::thread::spawn(move || {
        let out: OwnedFd = out_w.into();
        use std::os::fd::AsRawFd;
        run(
            in_r.as_fd(),
            FdWriter(out.as_raw_fd()),
            super::grace(1.0).unwrap(),
            Events::WhenUnheard,
        )
    });
    in_w.write_all(&[early.bytes(), late.bytes()].concat())
        .unwrap();
    drop(in_w);
    // the runner reads until job 1 ended, then goes away
    let mut reader = std::io::BufReader::new(out_r);
    let mut seen = String::new();
    while !seen.contains("e 1 0 0\n") {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0);
        seen.push_str(&line);
    }
    drop(reader);
    assert_eq!(exec.join().unwrap().unwrap(), 0);
    // job 1 was told: no files; job 2 ended unheard: its files tell the next runner
    assert_eq!(late.file("rc.0"), "5\n\n");
    assert_eq!(events(d.path()), ["2.0.e5"]);
}

#[test]
fn an_end_whose_rc_file_cannot_be_written_is_marked() {
    let d = TempDir::new("exec-unwritable");
    let mut r = Rec::direct(d.path(), 3, &["true"]);
    fs::write(d.path().join("not-a-folder"), "").unwrap();
    r.meta = d.path().join("not-a-folder/3");
    let out = drive(r.bytes(), 1.0);
    let ends: Vec<String> = lines(&out)
        .into_iter()
        .filter(|l| l.starts_with("e "))
        .collect();
    assert_eq!(ends, ["e 3 0 1 -"], "{out}");
}
