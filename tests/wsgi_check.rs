//! `--check-wsgi`: the strict PEP 3333 checker. Its findings on apps that
//! each break one rule are compared with what CPython's `wsgiref.validate`
//! finds on the same apps (tests/apps/wsgi_violations.py), and the rules
//! wsgiref does not check have their own expected messages.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common::{BIN, Client, Server, apps_dir};

/// `ferrocorn call --check-wsgi` on one case of wsgi_violations.py.
fn check_case(case: &str) -> Output {
    Command::new(BIN)
        .args(["call", "--check-wsgi", "--chdir"])
        .arg(apps_dir())
        .arg(format!("wsgi_violations:{case}"))
        .arg("/")
        .output()
        .expect("run ferrocorn call")
}

/// The checker's findings (`[rule] message`), in order, from the error log.
fn findings(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|line| {
            line.split_once("WSGI violation in GET /: [")?
                .1
                .split_once("] ")
        })
        .map(|(rule, message)| (rule.to_owned(), message.to_owned()))
        .collect()
}

/// What wsgiref.validate finds first on each case, run by CPython.
fn wsgiref_findings() -> BTreeMap<String, Option<String>> {
    let output = Command::new("python3")
        .arg("wsgiref_findings.py")
        .current_dir(apps_dir())
        .output()
        .expect(
            "python3 runs tests/apps/wsgiref_findings.py (CPython is needed for this comparison)",
        );
    assert!(
        output.status.success(),
        "wsgiref_findings.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_json_object(&String::from_utf8_lossy(&output.stdout))
}

/// A flat JSON object of strings or nulls (what wsgiref_findings.py prints).
fn parse_json_object(text: &str) -> BTreeMap<String, Option<String>> {
    let mut map = BTreeMap::new();
    let mut chars = text.trim().trim_start_matches('{').chars().peekable();
    let read_string = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        let mut out = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => return out,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        out
    };
    loop {
        while chars.peek().is_some_and(|c| *c != '"' && *c != '}') {
            chars.next();
        }
        if chars.next() != Some('"') {
            break;
        }
        let key = read_string(&mut chars);
        while chars.peek().is_some_and(|c| *c == ':' || c.is_whitespace()) {
            chars.next();
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            Some(read_string(&mut chars))
        } else {
            for _ in 0..4 {
                chars.next();
            }
            None
        };
        map.insert(key, value);
    }
    map
}

#[test]
fn findings_match_wsgiref_validate_on_every_case_it_checks() {
    let expected = wsgiref_findings();
    let compared: Vec<_> = expected.iter().filter(|(_, f)| f.is_some()).collect();
    assert!(
        compared.len() >= 20,
        "wsgiref found too little: {expected:?}"
    );
    let mut mismatches = Vec::new();
    for (case, wsgiref) in compared {
        let output = check_case(case);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let ours = findings(&stderr);
        let first = ours.first().map(|(_, message)| message.as_str());
        if first != wsgiref.as_deref() {
            mismatches.push(format!("{case}: wsgiref {wsgiref:?}, ferrocorn {ours:?}"));
        }
        assert_eq!(
            output.status.code(),
            Some(2),
            "{case}: a broken contract exits 2\n{stderr}"
        );
    }
    assert!(
        mismatches.is_empty(),
        "findings differ:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn an_app_keeping_every_rule_has_no_findings_in_either_checker() {
    assert_eq!(wsgiref_findings().get("good"), Some(&None));
    let output = check_case("good");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(findings(&stderr), Vec::new(), "{stderr}");
    assert!(!stderr.contains("WSGI violation"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(output.stdout, b"ok");
}

#[test]
fn rules_wsgiref_does_not_check_have_findings_of_their_own() {
    let cases = [
        (
            "hop_by_hop_header",
            "hop-by-hop",
            "Hop-by-hop header not allowed: 'Connection'",
        ),
        (
            "content_length_too_long",
            "content-length",
            "Content-Length is 10 but the application produced 5 body bytes",
        ),
        (
            "start_response_twice",
            "start_response",
            "start_response() called a second time without exc_info",
        ),
        (
            "write_after_return",
            "write",
            "write() called after the application returned its iterable",
        ),
        (
            "reads_past_content_length",
            "input",
            "wsgi.input read past CONTENT_LENGTH (0 bytes)",
        ),
    ];
    let expected = wsgiref_findings();
    for (case, rule, message) in cases {
        assert_eq!(
            expected.get(case),
            Some(&None),
            "{case}: wsgiref checks it after all"
        );
        let output = check_case(case);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            findings(&stderr),
            vec![(rule.to_owned(), message.to_owned())],
            "{case}:\n{stderr}"
        );
        assert_eq!(output.status.code(), Some(2), "{case}");
    }
}

#[test]
fn the_server_logs_findings_and_still_answers_as_without_the_checker() {
    let server = Server::start(&["--check-wsgi", "wsgi_violations:content_length_too_long"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    let (status, headers) = client.response_head_only();
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-length") && v == "10")
    );
    assert!(
        server.wait_for_log(
            "WSGI violation in GET /x: [content-length] Content-Length is 10 but the application produced 5 body bytes"
        ),
        "{}",
        server.log()
    );
}

#[test]
fn without_the_flag_nothing_is_wrapped_or_reported() {
    // The access log shares the error log's stream: a violation would be
    // written before the request's access line, so once that line is there
    // the absence below is not a line merely late.
    let server = Server::start(&[
        "--access-logfile",
        "/dev/stderr",
        "wsgi_violations:no_content_type",
    ]);
    let response = server.get("/");
    assert_eq!(response.status, 200);
    assert!(
        server.wait_for_log("\"GET / HTTP/1.1\" 200"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("WSGI violation"), "{}", server.log());
}
