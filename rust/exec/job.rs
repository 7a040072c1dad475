//! The jobs in flight: starting a record, a job's timeout, and its end.
//!
//! Jobs are keyed by pid (a job leads its own process group, so the pid also
//! names the group). Each gets a serial number so a late alarm of an ended job
//! never touches a later job that happens to get the same pid.
use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::files::{hostname, os_text, Files};
use super::reap::{self, Alarm, Clock, Due};
use super::report::Reports;
use super::spawn::{spawn, spawn_rc, start_ticks, Programs};
use super::{Events, Mode, Record};
use crate::error::Result;

#[derive(Debug)]
struct Job {
    serial: u64,
    index: u64,
    trial: u64,
    /// Direct mode: the files the executor writes.
    files: Option<Files>,
    /// Why the job was stopped ("" when it ended by itself).
    why: String,
    timeout_label: String,
}

/// Every started job not yet reaped.
#[derive(Debug)]
pub struct Jobs {
    table: HashMap<u32, Job>,
    /// (index, trial) -> pid, for cancels
    tags: HashMap<(u64, u64), u32>,
    programs: Programs,
    clock: Clock,
    grace: Duration,
    events: Events,
    host: String,
    serial: u64,
}

impl Jobs {
    pub fn new(grace: Duration, events: Events) -> Self {
        Jobs {
            table: HashMap::new(),
            tags: HashMap::new(),
            programs: Programs::default(),
            clock: Clock::default(),
            grace,
            events,
            host: hostname(),
            serial: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// When the loop must wake at the latest to handle a timeout or a grace.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clock.next()
    }

    /// Start one record's job; its `s` line (and, if it never ran, `e` line) is queued.
    pub fn start<W: Write>(&mut self, rec: Record, out: &mut Reports<W>) {
        let (index, trial) = (rec.index, rec.trial);
        let launched = match rec.mode {
            Mode::Direct => self.launch_direct(&rec, out),
            Mode::Wrapper => {
                spawn(&rec, Stdio::null(), Stdio::null(), &mut self.programs).map_err(|err| {
                    let why = cannot_run(&rec, &err);
                    out.problem(&why);
                    (spawn_rc(&err), why)
                })
            }
        };
        let files =
            (rec.mode == Mode::Direct).then(|| Files::new(&rec.metadir, &rec.events, index, trial));
        let pid = match launched {
            Ok(pid) => pid,
            Err((rc, why)) => {
                out.started(index, trial, 0, "0");
                let recorded = files
                    .iter()
                    .all(|f| self.record_end(f, rc, &why, None, out));
                out.ended(index, trial, rc, recorded);
                return;
            }
        };
        out.started(index, trial, pid, &start_ticks(pid));
        self.serial += 1;
        let serial = self.serial;
        if let Some(at) = rec.timeout.and_then(|t| Instant::now().checked_add(t)) {
            if rec.mode == Mode::Direct {
                let due = Due::Timeout;
                self.clock.set(Alarm {
                    at,
                    serial,
                    pid,
                    due,
                });
            }
        }
        let job = Job {
            serial,
            index,
            trial,
            files,
            why: String::new(),
            timeout_label: rec.timeout_label,
        };
        self.table.insert(pid, job);
        self.tags.insert((index, trial), pid);
    }

    /// Direct mode up to the start line: the job's pid, or the rc and why of a
    /// job that could not be started (its start line then names the executor).
    fn launch_direct<W: Write>(
        &mut self,
        rec: &Record,
        out: &mut Reports<W>,
    ) -> std::result::Result<u32, (i32, String)> {
        let files = Files::new(&rec.metadir, &rec.events, rec.index, rec.trial);
        let mut problems: Vec<String> = files.make_dir().err().into_iter().collect();
        let launched = match files.open_outputs() {
            Err(problem) => {
                problems.push(problem.clone());
                Err((1, problem))
            }
            Ok(_) if rec.cwd.as_ref().is_some_and(|cwd| !cwd.is_dir()) => {
                let cwd = rec.cwd.as_deref().unwrap_or(".".as_ref());
                // stderr says it once, with the rc, when the end is recorded
                Err((
                    1,
                    format!("cannot enter the working directory {}", cwd.display()),
                ))
            }
            Ok((stdout, stderr)) => spawn(rec, stdout.into(), stderr.into(), &mut self.programs)
                .map_err(|err| (spawn_rc(&err), cannot_run(rec, &err))),
        };
        let pid = *launched.as_ref().unwrap_or(&std::process::id());
        problems.extend(files.write_start(&self.host, pid, &rec.stamp).err());
        match self.events {
            Events::Always => problems.extend(files.event("s").err()),
            Events::WhenUnheard => out.unless_heard(files.event_path("s")),
        }
        for problem in problems {
            out.problem(&problem);
        }
        launched
    }

    /// Reap every ended child: SIGKILL what it left in its group, write its
    /// files (direct mode), queue its `e` line.
    pub fn reap_all<W: Write>(&mut self, out: &mut Reports<W>) -> Result<()> {
        while let Some(end) = reap::peek_ended().map_err(|_| super::sigchld::sys("waitid"))? {
            let job = self.table.remove(&end.pid);
            if let Some(job) = &job {
                self.tags.remove(&(job.index, job.trial));
            }
            if job.is_some() {
                reap::kill_group(end.pid, libc::SIGKILL);
            }
            reap::reap(end.pid); // a child that is not a job is reaped all the same
            let Some(job) = job else { continue };
            let recorded = match &job.files {
                Some(files) => self.record_end(files, end.rc, &job.why, end.signal, out),
                None => true, // a wrapper records its own
            };
            out.ended(job.index, job.trial, end.rc, recorded);
        }
        Ok(())
    }

    /// A direct job's rc file, then its end event (now, or only if its `e`
    /// line cannot be delivered); whether the rc file is in place.
    fn record_end<W: Write>(
        &self,
        files: &Files,
        rc: i32,
        why: &str,
        signal: Option<i32>,
        out: &mut Reports<W>,
    ) -> bool {
        let always = self.events == Events::Always;
        let problems = files.record_end(rc, why, signal, always);
        let written = problems.is_empty() || files.path("rc").exists();
        for problem in problems {
            out.problem(&problem);
        }
        if !always && written {
            out.unless_heard(files.event_path(&format!("e{rc}")));
        }
        written
    }

    /// Stop a job as a cancel does: SIGTERM to its group now, SIGKILL after the grace
    /// (a wrapper keeps its own grace). A job that ended already is left alone.
    pub fn cancel(&mut self, index: u64, trial: u64, now: Instant) {
        let Some(&pid) = self.tags.get(&(index, trial)) else {
            return;
        };
        let Some(job) = self.table.get_mut(&pid) else {
            return;
        };
        reap::kill_group(pid, libc::SIGTERM);
        if job.files.is_none() {
            return;
        }
        if job.why.is_empty() {
            job.why = "terminated by SIGTERM".into();
        }
        if let Some(at) = now.checked_add(self.grace) {
            self.clock.set(Alarm {
                at,
                serial: job.serial,
                pid,
                due: Due::Kill,
            });
        }
    }

    /// Act on the deadlines due at `now`: SIGTERM at a timeout, SIGKILL after the grace.
    pub fn ring(&mut self, now: Instant) {
        while let Some(alarm) = self.clock.pop_due(now) {
            let Some(job) = self.table.get_mut(&alarm.pid) else {
                continue;
            };
            if job.serial != alarm.serial {
                continue;
            }
            match alarm.due {
                Due::Timeout => {
                    job.why = format!("timed out after {}", job.timeout_label);
                    reap::kill_group(alarm.pid, libc::SIGTERM);
                    if let Some(at) = now.checked_add(self.grace) {
                        self.clock.set(Alarm {
                            at,
                            due: Due::Kill,
                            ..alarm
                        });
                    }
                }
                Due::Kill => reap::kill_group(alarm.pid, libc::SIGKILL),
            }
        }
    }
}

fn cannot_run(rec: &Record, err: &std::io::Error) -> String {
    let argv0 = rec
        .argv
        .first()
        .map(|a| a.to_string_lossy())
        .unwrap_or_default();
    format!("cannot run {argv0}: {}", os_text(err))
}
