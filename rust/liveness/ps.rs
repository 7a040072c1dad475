//! The local process table: `ps -o pid=,stat=`.
use std::collections::HashSet;

use super::text::{lines, tokens};
use super::{JobState, Liveness, States};

/// Alive -> running; zombie or dead (`Z`, `X`) -> done; a pid not listed is absent.
pub fn parse_ps(text: &str, wanted: &HashSet<String>) -> States {
    let mut out = States::new();
    for line in lines(text) {
        let mut toks = tokens(line);
        let (Some(pid), Some(stat)) = (toks.next(), toks.next()) else {
            continue;
        };
        if !wanted.contains(pid) {
            continue;
        }
        let liveness = if stat.starts_with(['Z', 'X']) {
            Liveness::Done
        } else {
            Liveness::Running
        };
        out.insert(pid.to_owned(), JobState::new(liveness));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_table() {
        let wanted: HashSet<String> = ["12", "13", "14"].iter().map(|s| s.to_string()).collect();
        let out = parse_ps("  12 S\n 13 Z+\n 99 R\nbad\n", &wanted);
        assert_eq!(out.len(), 2);
        assert_eq!(out["12"].liveness, Liveness::Running);
        assert_eq!(out["13"].liveness, Liveness::Done);
    }
}
