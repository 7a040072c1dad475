//! Son of Grid Engine: plain `qstat`, `qstat -xml` and `qacct -j`.
//! Job ids are `"<job>"`, or `"<job>.<task>"` for array tasks.
use std::collections::HashSet;

use super::ranges::parse_ranges;
use super::text::{int18, is_space, lines, tokens, trim};
use super::{JobState, Liveness, States, Wanted};

/// qstat state letters: E* failed (reason = the letters), r/t/s/S/T running,
/// q/w/h pending; a lone `d` (being deleted) running; anything else pending.
pub fn sge_state(word: &str) -> JobState {
    let has = |set: &str| word.chars().any(|c| set.contains(c));
    if word.contains('E') {
        JobState::failed(word)
    } else if has("rtsST") {
        JobState::new(Liveness::Running)
    } else if has("qwh") {
        JobState::new(Liveness::Pending)
    } else if word.contains('d') {
        JobState::new(Liveness::Running)
    } else {
        JobState::new(Liveness::Pending)
    }
}

fn emit(out: &mut States, want: &mut Wanted<'_>, job: &str, tasks: &str, state: JobState) {
    if tasks.is_empty() {
        if want.contains(job) {
            out.insert(job.to_owned(), state);
        }
        return;
    }
    let exact = format!("{job}.{tasks}");
    if want.contains(&exact) {
        out.insert(exact, state);
        return;
    }
    if let Some(ranges) = parse_ranges(tasks) {
        want.in_ranges(job, &ranges, |hit| {
            out.insert(hit.to_owned(), state.clone());
        });
    }
}

/// Plain `qstat` table: job-ID prior name user state date time [queue] slots [ja-task-ID].
pub fn parse_qstat(text: &str, wanted: &HashSet<String>) -> States {
    let mut want = Wanted::new(wanted, '.');
    let mut out = States::new();
    for line in lines(text) {
        let toks: Vec<&str> = tokens(line).collect();
        if toks.len() < 8 || int18(toks[0]).is_none() {
            continue;
        }
        let rest = &toks[7..];
        let tasks = match rest.len() {
            0 | 1 => "",
            2 if int18(rest[0]).is_some() => rest[1],
            2 => "",
            _ => rest[2],
        };
        emit(&mut out, &mut want, toks[0], tasks, sge_state(toks[4]));
    }
    out
}

fn tag<'a>(block: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let Some(start) = block.find(&open).map(|i| i + open.len()) else {
        return "";
    };
    match block[start..].find(&format!("</{name}>")) {
        Some(len) => trim(&block[start..start + len]),
        None => "",
    }
}

/// `qstat -xml`: each `<job_list>` element's JB_job_number, state and tasks.
pub fn parse_qstat_xml(text: &str, wanted: &HashSet<String>) -> States {
    let mut want = Wanted::new(wanted, '.');
    let mut out = States::new();
    for block in text.split("<job_list").skip(1) {
        let block = block.split("</job_list>").next().unwrap_or("");
        let (job, word) = (tag(block, "JB_job_number"), tag(block, "state"));
        if int18(job).is_none() || word.is_empty() {
            continue;
        }
        emit(
            &mut out,
            &mut want,
            job,
            tag(block, "tasks"),
            sge_state(word),
        );
    }
    out
}

#[derive(Default)]
struct Block {
    job: Option<String>,
    task: Option<String>,
    failed: Option<String>,
}

fn finish_block(b: &Block, wanted: &HashSet<String>, out: &mut States) {
    let (Some(job), Some(failed)) = (&b.job, &b.failed) else {
        return;
    };
    if int18(job).is_none() {
        return;
    }
    let jid = match b.task.as_deref() {
        None | Some("") | Some("undefined") => job.clone(),
        Some(task) => format!("{job}.{task}"),
    };
    if wanted.contains(&jid) {
        let state = if failed == "0" {
            JobState::new(Liveness::Done)
        } else {
            JobState::failed(failed)
        };
        out.insert(jid, state);
    }
}

/// `qacct -j` blocks: `failed 0` -> done, anything else -> failed with that text.
pub fn parse_qacct(text: &str, wanted: &HashSet<String>) -> States {
    let mut out = States::new();
    let mut block = Block::default();
    for line in lines(text) {
        if line.starts_with("=====") {
            finish_block(&block, wanted, &mut out);
            block = Block::default();
            continue;
        }
        let Some(cut) = line.find(is_space) else {
            continue;
        };
        let value = || tokens(&line[cut..]).collect::<Vec<_>>().join(" ");
        match &line[..cut] {
            "jobnumber" => block.job = Some(value()),
            "taskid" => block.task = Some(value()),
            "failed" => block.failed = Some(value()),
            _ => {}
        }
    }
    finish_block(&block, wanted, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(jids: &[&str]) -> HashSet<String> {
        jids.iter().map(|s| s.to_string()).collect()
    }

    const QSTAT: &str = "\
job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID
-----------------------------------------------------------------------------------------------------------------
      1 0.55500 sleep      root         r     01/01/2024 10:00:00 all.q@host                         1
      2 0.00000 arr        root         qw    01/01/2024 10:00:00                                    1 1-10:1
      3 0.55500 arr        root         Eqw   01/01/2024 10:00:00 all.q@host                         1 5
      4 0.00000 arr        root         hqw   01/01/2024 10:00:00                                    1 3,4
      5 0.00000 one        root         qw    01/01/2024 10:00:00                                    1
";

    #[test]
    fn qstat_table() {
        let out = parse_qstat(QSTAT, &set(&["1", "2.3", "2.11", "3.5", "4.4", "5", "6"]));
        assert_eq!(out.len(), 5);
        assert_eq!(out["1"].liveness, Liveness::Running);
        assert_eq!(out["2.3"].liveness, Liveness::Pending);
        assert_eq!(out["3.5"], JobState::failed("Eqw"));
        assert_eq!(out["4.4"].liveness, Liveness::Pending);
        assert_eq!(out["5"].liveness, Liveness::Pending);
    }

    #[test]
    fn qstat_xml() {
        let xml =
            "<job_info><queue_info><job_list state=\"running\"><JB_job_number>7</JB_job_number>\
                   <state>r</state><tasks>2</tasks></job_list></queue_info><job_info>\
                   <job_list state=\"pending\"><JB_job_number>7</JB_job_number><state>qw</state>\
                   <tasks>3-9:2</tasks></job_list><job_list><JB_job_number>8</JB_job_number>\
                   <state>dr</state></job_list></job_info></job_info>";
        let out = parse_qstat_xml(xml, &set(&["7.2", "7.5", "7.4", "8"]));
        assert_eq!(out.len(), 3);
        assert_eq!(out["7.2"].liveness, Liveness::Running);
        assert_eq!(out["7.5"].liveness, Liveness::Pending);
        assert_eq!(out["8"].liveness, Liveness::Running);
    }

    #[test]
    fn qacct_blocks() {
        let text = "==============\njobnumber 5\ntaskid 2\nfailed 37  : qmaster enforced h_rt\n\
                    exit_status 137\n=====\njobnumber 6\ntaskid undefined\nfailed 0\nexit_status 1\n";
        let out = parse_qacct(text, &set(&["5.2", "6"]));
        assert_eq!(out["5.2"], JobState::failed("37 : qmaster enforced h_rt"));
        assert_eq!(out["6"].liveness, Liveness::Done);
    }
}
