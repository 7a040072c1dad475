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

/// What an event entry says about its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `<index>.<trial>.s`: the wrapper started.
    Start,
    /// `<index>.<trial>.e<rc>`: the wrapper recorded its rc file, and the rc is in
    /// the name; `<index>.<trial>.e` (no rc): the rc file must be read.
    End(Option<i32>),
}

/// `"<index>.<trial>.<s|e|e<rc>>"` -> (index, trial, event); None when it does not parse.
pub fn parse_event_name(name: &str) -> Option<(u64, u64, Event)> {
    let mut parts = name.split('.');
    let (index, trial, kind) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let event = match kind.as_bytes() {
        b"s" => Event::Start,
        b"e" => Event::End(None),
        [b'e', rest @ ..] => Event::End(Some(event_rc(rest)?)),
        _ => return None,
    };
    Some((number(index)?, number(trial)?, event))
}

/// The rc carried by an end event's name: `-?[0-9]+` within i32.
fn event_rc(s: &[u8]) -> Option<i32> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
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
        assert_eq!(parse_event_name("12.3.e"), Some((12, 3, Event::End(None))));
        assert_eq!(
            parse_event_name("12.3.e0"),
            Some((12, 3, Event::End(Some(0))))
        );
        assert_eq!(
            parse_event_name("12.3.e143"),
            Some((12, 3, Event::End(Some(143))))
        );
        assert_eq!(
            parse_event_name("1.0.e-15"),
            Some((1, 0, Event::End(Some(-15))))
        );
        assert_eq!(
            parse_event_name("1.0.e007"),
            Some((1, 0, Event::End(Some(7))))
        );
        assert_eq!(parse_event_name("0.0.s"), Some((0, 0, Event::Start)));
        assert_eq!(parse_event_name("007.1.s"), Some((7, 1, Event::Start)));
        for bad in [
            "12.3",
            "12.3.x",
            "12.3.e.tmp",
            "12.3.e0.tmp",
            "12.3.e+1",
            "12.3.e-",
            "12.3.e--1",
            "12.3.e1x",
            "12.3.e 1",
            "12.3.e2147483648",
            "12.3.s0",
            "a.1.s",
            "+1.1.s",
            "1..s",
            ".1.1.s",
            "1.1.S",
            "1.1.E0",
            "99999999999999999999.1.s",
            "\u{661}.1.s",
            "1.1.e\u{661}",
        ] {
            assert_eq!(parse_event_name(bad), None, "{bad}");
        }
    }
}
