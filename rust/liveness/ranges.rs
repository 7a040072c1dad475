//! Array task ranges: Slurm `1,3-5,7-15:2%4` and SGE `1-10:1`, `5,7`.

/// `lo..=hi` by `step` (lo <= hi, step >= 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub lo: u64,
    pub hi: u64,
    pub step: u64,
}

impl Range {
    pub fn count(&self) -> u64 {
        (self.hi - self.lo) / self.step + 1
    }

    pub fn contains(&self, t: u64) -> bool {
        self.lo <= t && t <= self.hi && (t - self.lo) % self.step == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> {
        let step = usize::try_from(self.step).unwrap_or(usize::MAX);
        (self.lo..=self.hi).step_by(step)
    }
}

/// Parse a task list; a Slurm throttle suffix (`%3`) is dropped. None when malformed.
pub fn parse_ranges(spec: &str) -> Option<Vec<Range>> {
    let spec = spec.split('%').next().unwrap_or("");
    spec.split(',').map(parse_piece).collect()
}

fn parse_piece(piece: &str) -> Option<Range> {
    let (rng, step) = match piece.split_once(':') {
        Some((rng, step)) => (rng, super::text::int18(step)?),
        None => (piece, 1),
    };
    let lo = super::text::int18(rng.split_once('-').map_or(rng, |(lo, _)| lo))?;
    let hi = match rng.split_once('-') {
        Some((_, hi)) => super::text::int18(hi)?,
        None => lo,
    };
    (step >= 1 && hi >= lo).then_some(Range { lo, hi, step })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(lo: u64, hi: u64, step: u64) -> Range {
        Range { lo, hi, step }
    }

    #[test]
    fn pieces() {
        assert_eq!(parse_ranges("5-9%3"), Some(vec![r(5, 9, 1)]));
        assert_eq!(parse_ranges("1,3-5"), Some(vec![r(1, 1, 1), r(3, 5, 1)]));
        assert_eq!(parse_ranges("1-10:1"), Some(vec![r(1, 10, 1)]));
        assert_eq!(parse_ranges("7-15:2"), Some(vec![r(7, 15, 2)]));
        assert_eq!(parse_ranges("4:2"), Some(vec![r(4, 4, 2)]));
        for bad in [
            "", "1-", "-1", "5-3", "1-5:0", "1-5:", "1,,2", "a", "1-5-7", "1:2:3", "1 ",
        ] {
            assert_eq!(parse_ranges(bad), None, "{bad}");
        }
    }

    #[test]
    fn membership() {
        let x = r(7, 15, 2);
        assert_eq!(x.count(), 5);
        assert_eq!(x.iter().collect::<Vec<_>>(), [7, 9, 11, 13, 15]);
        assert!(x.contains(9) && !x.contains(8) && !x.contains(17) && !x.contains(5));
        let huge = r(0, 999_999_999_999_999_999, 1);
        assert_eq!(huge.count(), 1_000_000_000_000_000_000);
    }
}
