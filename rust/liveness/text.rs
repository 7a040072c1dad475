//! Text rules shared by the parsers: ASCII white space only, so that the Rust
//! parsers and the Python reference split and strip identically.

pub fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0b' | '\x0c')
}

pub fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Non-empty lines, stripped.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').map(trim).filter(|l| !l.is_empty())
}

/// White-space separated tokens.
pub fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|t| !t.is_empty())
}

/// A plain decimal number of 1 to 18 ASCII digits.
pub fn int18(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            lines(" a \r\n\n\x0bb\x0c\n").collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(tokens(" a\t b\x1cc ").collect::<Vec<_>>(), ["a", "b\x1cc"]);
        assert_eq!(int18("007"), Some(7));
        assert_eq!(int18("999999999999999999"), Some(999_999_999_999_999_999));
        for bad in ["", "1234567890123456789", "+1", "1 ", "١"] {
            assert_eq!(int18(bad), None);
        }
    }
}
