//! Parsing of the two kinds of names and contents the poller reads: rc files
//! and event entries. Unusable input is "no information yet", never an error.

/// Only this many leading bytes of an rc file are read; its first line must end within them.
pub const RC_READ_LIMIT: usize = 256;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The exit code in the first bytes of an rc file, or None.
///
/// The first line must be complete (end with `\n` within RC_READ_LIMIT bytes);
/// stripped of ASCII white space it must be an optionally signed decimal number
/// that fits in an i32. A torn `"12\n"` read as `"1"` therefore gives None.
pub fn parse_rc(data: &[u8]) -> Option<i32> {
    let head = &data[..data.len().min(RC_READ_LIMIT)];
    let nl = head.iter().position(|&b| b == b'\n')?;
    let line = trim(&head[..nl]);
    let digits = match line.first() {
        Some(b'+' | b'-') => &line[1..],
        _ => line,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse::<i32>().ok()
}

/// `"<index>.<trial>.<s|e>"` -> (index, trial, ended); None when it does not parse.
pub fn parse_event_name(name: &str) -> Option<(u64, u64, bool)> {
    let mut parts = name.split('.');
    let (index, trial, kind) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let ended = match kind {
        "s" => false,
        "e" => true,
        _ => return None,
    };
    Some((number(index)?, number(trial)?, ended))
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc_values() {
        assert_eq!(parse_rc(b"0\n"), Some(0));
        assert_eq!(parse_rc(b"  -15 \r\nsignal TERM\n"), Some(-15));
        assert_eq!(parse_rc(b"+3\n"), Some(3));
        assert_eq!(parse_rc(b"\x0b7\x0c\n"), Some(7));
        assert_eq!(parse_rc(b"2147483647\n"), Some(i32::MAX));
        assert_eq!(parse_rc(b"-2147483648\n"), Some(i32::MIN));
        assert_eq!(parse_rc(b"0000000000000000000000042\n"), Some(42));
    }

    #[test]
    fn rc_no_information() {
        for bad in [
            &b""[..],
            b"1",
            b"12",
            b"\n",
            b" \n",
            b"x\n",
            b"1 2\n",
            b"--1\n",
            b"+\n",
            b"2147483648\n",
            b"-2147483649\n",
            b"1_000\n",
            b"\xff\n",
            b"\x1c1\n",
            b"\x001\n",
        ] {
            assert_eq!(parse_rc(bad), None, "{bad:?}");
        }
        let mut long = vec![b' '; RC_READ_LIMIT];
        long.extend_from_slice(b"1\n");
        assert_eq!(parse_rc(&long), None);
        let mut edge = vec![b' '; RC_READ_LIMIT - 2];
        edge.extend_from_slice(b"1\n");
        assert_eq!(parse_rc(&edge), Some(1));
    }

    #[test]
    fn event_names() {
        assert_eq!(parse_event_name("12.3.e"), Some((12, 3, true)));
        assert_eq!(parse_event_name("0.0.s"), Some((0, 0, false)));
        assert_eq!(parse_event_name("007.1.s"), Some((7, 1, false)));
        for bad in [
            "12.3",
            "12.3.x",
            "12.3.e.tmp",
            "a.1.s",
            "+1.1.s",
            "1..s",
            ".1.1.s",
            "1.1.S",
            "99999999999999999999.1.s",
            "١.1.s",
        ] {
            assert_eq!(parse_event_name(bad), None, "{bad}");
        }
    }
}
