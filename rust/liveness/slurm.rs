//! Slurm: `squeue -h [-r] -o '%i|%T|%r'` and `sacct -n -P [-X] [-c] -o JobID,State,ExitCode`.
use std::collections::HashSet;

use super::ranges::parse_ranges;
use super::text::{int18, lines, tokens, trim};
use super::{JobState, Liveness, States, Wanted};

/// Short codes (`squeue -o %t`) -> state words.
#[rustfmt::skip]
const SHORT: &[(&str, &str)] = &[
    ("PD", "PENDING"), ("CF", "CONFIGURING"), ("RQ", "REQUEUED"), ("RH", "REQUEUE_HOLD"),
    ("RF", "REQUEUE_FED"), ("RD", "RESV_DEL_HOLD"), ("R", "RUNNING"), ("CG", "COMPLETING"),
    ("SO", "STAGE_OUT"), ("SI", "SIGNALING"), ("RS", "RESIZING"), ("S", "SUSPENDED"),
    ("ST", "STOPPED"), ("CD", "COMPLETED"), ("F", "FAILED"), ("CA", "CANCELLED"),
    ("TO", "TIMEOUT"), ("OOM", "OUT_OF_MEMORY"), ("NF", "NODE_FAIL"), ("PR", "PREEMPTED"),
    ("BF", "BOOT_FAIL"), ("DL", "DEADLINE"), ("RV", "REVOKED"), ("SE", "SPECIAL_EXIT"),
];

fn liveness_of(word: &str) -> Option<Liveness> {
    Some(match word {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
        | "RESV_DEL_HOLD" => Liveness::Pending,
        // SUSPENDED/STOPPED keep their allocation and resume: running.
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" | "RESIZING" | "SUSPENDED"
        | "STOPPED" => Liveness::Running,
        "COMPLETED" => Liveness::Done,
        "FAILED" | "CANCELLED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "PREEMPTED"
        | "BOOT_FAIL" | "DEADLINE" | "REVOKED" | "SPECIAL_EXIT" => Liveness::Failed,
        _ => return None,
    })
}

/// `"CANCELLED by 0"`, `"CANCELLED+"`, `"CA"` -> state; None for an empty field.
/// An unknown word means the scheduler still knows the job: pending.
pub fn slurm_state(field: &str) -> Option<JobState> {
    let word = tokens(field).next()?.trim_end_matches('+');
    if !word.is_ascii() {
        return Some(JobState::new(Liveness::Pending));
    }
    let upper = word.to_ascii_uppercase();
    let word = SHORT
        .iter()
        .find(|(s, _)| *s == upper)
        .map_or(upper.as_str(), |(_, w)| w);
    Some(match liveness_of(word) {
        None => JobState::new(Liveness::Pending),
        Some(Liveness::Failed) => JobState::failed(word),
        Some(l) => JobState::new(l),
    })
}

/// `123_[5-9%3]` -> ("123", "5-9%3").
fn collapsed(jid: &str) -> Option<(&str, &str)> {
    let (base, rest) = jid.split_once("_[")?;
    let spec = rest.strip_suffix(']')?;
    (int18(base).is_some() && !spec.contains(']')).then_some((base, spec))
}

fn rows(text: &str, wanted: &HashSet<String>) -> States {
    let mut want = Wanted::new(wanted, '_');
    let mut out = States::new();
    for line in lines(text) {
        let mut fields: Vec<&str> = if line.contains('|') {
            line.split('|').take(2).collect()
        } else {
            tokens(line).take(2).collect()
        };
        if fields.len() < 2 {
            continue;
        }
        let field = fields.pop().expect("two fields");
        let jid = trim(fields[0]);
        if jid.is_empty() || jid.contains('.') {
            continue; // job steps: 123.batch, 123.extern, 123_4.0
        }
        let Some(state) = slurm_state(field) else {
            continue;
        };
        if want.contains(jid) {
            out.insert(jid.to_owned(), state);
            continue;
        }
        let Some((base, spec)) = collapsed(jid) else {
            continue;
        };
        let Some(ranges) = parse_ranges(spec) else {
            continue;
        };
        want.in_ranges(base, &ranges, |hit| {
            out.insert(hit.to_owned(), state.clone());
        });
    }
    out
}

/// `squeue -h [-r] -o '%i|%T|%r'`; collapsed pending arrays are understood.
pub fn parse_squeue(text: &str, wanted: &HashSet<String>) -> States {
    rows(text, wanted)
}

/// `sacct -n -P -X -o JobID,State,ExitCode`, also `sacct -c` (jobcomp: array
/// tasks appear under their raw job id) and the white-space columns without `-P`.
pub fn parse_sacct(text: &str, wanted: &HashSet<String>) -> States {
    rows(text, wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(jids: &[&str]) -> HashSet<String> {
        jids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn states() {
        let f = |s: &str| slurm_state(s).map(|st| (st.liveness, st.reason));
        assert_eq!(
            f("CANCELLED by 0"),
            Some((Liveness::Failed, "CANCELLED".into()))
        );
        assert_eq!(
            f("CANCELLED+"),
            Some((Liveness::Failed, "CANCELLED".into()))
        );
        assert_eq!(f("oom"), Some((Liveness::Failed, "OUT_OF_MEMORY".into())));
        assert_eq!(f(" PD "), Some((Liveness::Pending, String::new())));
        assert_eq!(f("SUSPENDED"), Some((Liveness::Running, String::new())));
        assert_eq!(f("CD"), Some((Liveness::Done, String::new())));
        assert_eq!(f("WEIRD"), Some((Liveness::Pending, String::new())));
        assert_eq!(f("  "), None);
    }

    #[test]
    fn squeue_with_collapsed_array() {
        let text = "5_[1-9%1]|PENDING|JobArrayTaskLimit\n4|RUNNING|None\n\
                    6|CANCELLED by 0|x\n7_3|OUT_OF_MEMORY|\n8_[1,3-5]|PD|\ngarbage\n";
        let out = parse_squeue(
            text,
            &set(&["5_3", "5_10", "4", "6", "7_3", "8_4", "8_2", "9"]),
        );
        let mut keys: Vec<_> = out.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["4", "5_3", "6", "7_3", "8_4"]);
        assert_eq!(out["6"], JobState::failed("CANCELLED"));
        assert_eq!(out["5_3"].liveness, Liveness::Pending);
    }

    #[test]
    fn huge_range_costs_only_wanted() {
        let text = "1_[0-999999999999999998]|PENDING|\n";
        let out = parse_squeue(text, &set(&["1_5", "1_999999999999999998", "2_5"]));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn sacct_formats() {
        let p = "123_4|COMPLETED|0:0\n123_4.batch|FAILED|1:0\n124|CANCELLED by 0|0:15\n\
                 125|OUT_OF_MEMORY|0:125\n125.extern|COMPLETED|0:0\n";
        let out = parse_sacct(p, &set(&["123_4", "124", "125"]));
        assert_eq!(out["123_4"].liveness, Liveness::Done);
        assert_eq!(out["124"], JobState::failed("CANCELLED"));
        assert_eq!(out["125"], JobState::failed("OUT_OF_MEMORY"));
        // sacct -c without -P: fixed-width columns
        let cols = "1             COMPLETED      0:0 \n3                FAILED      3:0 \n";
        let out = parse_sacct(cols, &set(&["1", "3"]));
        assert_eq!(out["3"], JobState::failed("FAILED"));
        assert_eq!(out["1"].liveness, Liveness::Done);
    }
}
