//! The record parser on whole, chunked and malformed input.
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::record::{Parsed, Parser, MAX_FIELD};
use super::{Mode, Record};

fn fields(parts: &[&str]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.bytes().chain([0])).collect()
}

fn direct(index: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "J", index, "0", "direct", "/m", "/ev", "/w", "2.5", "2.5s", "", "h1",
    ]
    .map(String::from)
    .to_vec();
    v.extend(["2", "sh", "-c", "2", "A=1", "B=x=y"].map(String::from));
    v
}

fn bytes_of(v: &[String]) -> Vec<u8> {
    fields(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

fn parse_in(chunks: &[&[u8]]) -> Vec<Parsed> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c, &mut out);
    }
    p.finish(&mut out);
    out
}

fn record(p: &Parsed) -> &Record {
    match p {
        Parsed::Record(r) => r,
        other => panic!("not a record: {other:?}"),
    }
}

#[test]
fn a_whole_record() {
    let out = parse_in(&[&bytes_of(&direct("7"))]);
    assert_eq!(out.len(), 1);
    let r = record(&out[0]);
    assert_eq!((r.index, r.trial, r.mode), (7, 0, Mode::Direct));
    assert_eq!(r.metadir, PathBuf::from("/m"));
    assert_eq!(r.events, PathBuf::from("/ev"));
    assert_eq!(r.cwd, Some(PathBuf::from("/w")));
    assert_eq!(r.timeout, Some(Duration::from_millis(2500)));
    assert_eq!(r.timeout_label, "2.5s");
    assert_eq!(r.cgroup, None);
    assert_eq!(r.stamp, "h1");
    assert_eq!(r.argv, [OsString::from("sh"), OsString::from("-c")]);
    let env: Vec<_> = r
        .env
        .iter()
        .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
        .collect();
    assert_eq!(env, [("A", "1"), ("B", "x=y")]);
}

#[test]
fn any_chunking_gives_the_same_records() {
    let mut data = bytes_of(&direct("1"));
    data.extend(fields(&[
        "J",
        "2",
        "3",
        "wrapper",
        "",
        "",
        "",
        "",
        "",
        "/cg/cgroup.procs",
        "",
        "1",
        "bash",
        "0",
    ]));
    let whole = parse_in(&[&data]);
    assert_eq!(whole.len(), 2);
    assert_eq!(
        record(&whole[1]).cgroup,
        Some(PathBuf::from("/cg/cgroup.procs"))
    );
    assert_eq!(record(&whole[1]).timeout, None);
    for size in [1, 2, 3, 7, 64] {
        let chunks: Vec<&[u8]> = data.chunks(size).collect();
        assert_eq!(parse_in(&chunks), whole, "chunks of {size}");
    }
    // a record is out as soon as its last field is complete, not later
    let mut p = Parser::new();
    let mut out = Vec::new();
    p.feed(&data[..data.len() - 1], &mut out);
    assert_eq!(out.len(), 1);
    p.feed(&data[data.len() - 1..], &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn no_timeout_and_default_label() {
    let mut v = direct("1");
    v[7] = String::new();
    assert_eq!(record(&parse_in(&[&bytes_of(&v)])[0]).timeout, None);
    v[7] = "0".into();
    assert_eq!(record(&parse_in(&[&bytes_of(&v)])[0]).timeout, None);
    v[7] = "3".into();
    v[8] = String::new();
    assert_eq!(record(&parse_in(&[&bytes_of(&v)])[0]).timeout_label, "3s");
}

fn malformed(out: &Parsed) -> &str {
    match out {
        Parsed::Malformed(t) => t,
        other => panic!("not malformed: {other:?}"),
    }
}

#[test]
fn a_malformed_record_is_skipped_up_to_the_next_j() {
    let cases: [(usize, &str, &str); 7] = [
        (1, "x7", "index \"x7\" is not a number"),
        (2, "-1", "(job 1): trial \"-1\" is not a number"),
        (3, "batch", "(job 1.0): unknown mode \"batch\""),
        (11, "0", "argc is 0"),
        (15, "NOEQUALS", "env entry \"NOEQUALS\" is not KEY=VALUE"),
        (10, "two words", "stamp \"two words\" is not one word"),
        (7, "soon", "timeout \"soon\" is not a count of seconds"),
    ];
    for (at, value, says) in cases {
        let mut bad = direct("1");
        bad[at] = value.into();
        let mut data = fields(&["junk", "more"]);
        data.extend(bytes_of(&bad));
        data.extend(bytes_of(&direct("2")));
        let out = parse_in(&[&data]);
        let texts: Vec<&str> = out
            .iter()
            .filter_map(|p| match p {
                Parsed::Malformed(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert!(texts[0].contains("expected \"J\""), "{texts:?}");
        assert!(
            texts[1].starts_with("malformed record") && texts[1].contains(says),
            "{texts:?}"
        );
        let good: Vec<u64> = out
            .iter()
            .filter_map(|p| match p {
                Parsed::Record(r) => Some(r.index),
                _ => None,
            })
            .collect();
        assert_eq!(good, [2], "{value}");
    }
}

#[test]
fn a_record_cut_short_by_a_new_one() {
    let mut data = fields(&["J", "1", "0"]);
    data.extend(bytes_of(&direct("5")));
    let out = parse_in(&[&data]);
    assert!(malformed(&out[0]).contains("(job 1.0): unknown mode \"J\""));
    assert_eq!(record(&out[1]).index, 5);
}

#[test]
fn relative_paths_in_direct_mode_are_malformed() {
    let mut v = direct("4");
    v[4] = "rel/dir".into();
    let out = parse_in(&[&bytes_of(&v)]);
    assert!(malformed(&out[0]).contains("(job 4.0): metadir and events must be absolute"));
}

#[test]
fn input_ending_inside_a_record() {
    let data = bytes_of(&direct("1"));
    let out = parse_in(&[&data[..data.len() - 4]]);
    assert_eq!(malformed(&out[0]), "the input ended inside a record");
    assert!(parse_in(&[b"J\0"]).len() == 1);
    assert!(parse_in(&[b"J"]).len() == 1);
    assert!(parse_in(&[b""]).is_empty());
}

#[test]
fn an_endless_field_stops_the_input() {
    let mut p = Parser::new();
    let mut out = Vec::new();
    p.feed(&vec![b'a'; MAX_FIELD + 1], &mut out);
    assert!(matches!(&out[..], [Parsed::Stop(_)]));
    p.feed(&bytes_of(&direct("1")), &mut out);
    p.finish(&mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn a_cancel_between_records() {
    let mut data = bytes_of(&direct("1"));
    data.extend(fields(&["C", "4", "2"]));
    data.extend(bytes_of(&direct("2")));
    data.extend(fields(&["C", "x", "2"]));
    let out = parse_in(&[&data]);
    assert_eq!(record(&out[0]).index, 1);
    assert_eq!(out[1], Parsed::Cancel(4, 2));
    assert_eq!(record(&out[2]).index, 2);
    assert!(
        malformed(&out[3]).contains("index \"x\" is not a number"),
        "{out:?}"
    );
    assert_eq!(out.len(), 4);
}
