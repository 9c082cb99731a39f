//! `ferrocorn call`: one request through the app in-process, body on
//! stdout, exit status 0 (2xx/3xx), 1 (4xx/5xx or no run), 2 (contract broken).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, apps_dir};

fn call_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("call")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run ferrocorn call")
}

fn call(args: &[&str]) -> Output {
    call_in(&apps_dir(), args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_readme_example_prints_the_body_and_exits_0() {
    let output = call_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["examples.hello:application", "/"],
    );
    assert_eq!(stdout(&output), "Hello, world!\n", "{}", stderr(&output));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn include_prints_the_status_line_and_headers_first() {
    let output = call(&["--include", "probe", "/pid"]);
    let text = stdout(&output);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a head, a blank line, a body");
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
    assert!(lines.any(|l| l == "Content-Type: text/plain"), "{head}");
    assert!(body.parse::<u32>().is_ok(), "the body is the pid: {body:?}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn method_headers_query_and_body_reach_the_environ() {
    let output = call(&[
        "probe",
        "-X",
        "PUT",
        "/environ/x?a=1&b=%20",
        "-H",
        "X-Custom: hello there",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"k\": 1}",
    ]);
    let text = stdout(&output);
    assert!(text.contains("\"REQUEST_METHOD\": \"PUT\""), "{text}");
    assert!(text.contains("\"PATH_INFO\": \"/environ/x\""), "{text}");
    assert!(text.contains("\"QUERY_STRING\": \"a=1&b=%20\""), "{text}");
    assert!(
        text.contains("\"HTTP_X_CUSTOM\": \"hello there\""),
        "{text}"
    );
    assert!(
        text.contains("\"CONTENT_TYPE\": \"application/json\""),
        "{text}"
    );
    assert!(text.contains("\"CONTENT_LENGTH\": \"8\""), "{text}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn data_defaults_to_post_with_a_form_content_type_as_curl_does() {
    let output = call(&["probe", "/environ", "-d", "a=1"]);
    let text = stdout(&output);
    assert!(text.contains("\"REQUEST_METHOD\": \"POST\""), "{text}");
    assert!(
        text.contains("\"CONTENT_TYPE\": \"application/x-www-form-urlencoded\""),
        "{text}"
    );
}

#[test]
fn data_file_sends_the_file_as_the_body() {
    let dir = common::scratch_dir("call-data-file");
    let file = dir.join("body.bin");
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(&file, &body).unwrap();
    let output = call(&["probe", "/input", "--data-file", file.to_str().unwrap()]);
    let sum: u64 = body.iter().map(|&b| b as u64).sum::<u64>() % 1_000_003;
    let text = stdout(&output);
    assert!(text.contains("\"length\": 70000"), "{text}");
    assert!(text.contains(&format!("\"sum\": {sum}")), "{text}");
}

#[test]
fn a_4xx_or_5xx_response_exits_1() {
    let not_found = call(&["probe", "/nowhere"]);
    assert_eq!(stdout(&not_found), "not found: /nowhere");
    assert_eq!(not_found.status.code(), Some(1));

    let raised = call(&["probe", "/raise"]);
    assert_eq!(raised.status.code(), Some(1));
    assert!(stderr(&raised).contains("Traceback"), "{}", stderr(&raised));
}

#[test]
fn a_contract_break_the_server_detects_exits_2_without_the_checker() {
    for path in ["/str-body", "/no-start-response", "/bad-status"] {
        let output = call(&["probe", path]);
        assert_eq!(output.status.code(), Some(2), "{path}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("WSGI violation in GET {path}: ")),
            "{path}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn an_app_that_does_not_load_exits_1_with_one_line() {
    let output = call(&["no_such_module:app", "/"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.starts_with("ferrocorn call: error: "), "{text}");
    assert!(text.contains("no_such_module"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn bad_arguments_exit_1_with_a_message_naming_the_problem() {
    let output = call(&["probe", "/", "-H", "no colon here"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("invalid header \"no colon here\""),
        "{}",
        stderr(&output)
    );

    let output = call(&["probe", "/", "-H", "Content-Length: 5"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("Content-Length cannot be set"),
        "{}",
        stderr(&output)
    );

    let output = call(&["probe", "no-leading-slash"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("invalid request target"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn call_with_sandbox_confines_the_app_and_cleans_up_after_it() {
    let dir = common::scratch_dir("call-sandbox");
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    let read = format!("/try/read?path={}", secret.display());
    let output = call(&["--sandbox", "escape:application", &read]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("\"type\": \"PermissionError\""),
        "{}",
        stdout(&output)
    );
    let unconfined = call(&["escape:application", &read]);
    assert!(
        stdout(&unconfined).contains("the host's secret"),
        "without --sandbox it reads"
    );

    let output = call(&["--sandbox", "escape:application", "/try/tempfile"]);
    let text = stdout(&output);
    let path = text
        .split("\"path\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{text}"));
    let private = Path::new(path).parent().unwrap();
    assert!(
        private
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("ferrocorn-"),
        "{path}"
    );
    assert!(
        !private.exists(),
        "the private temporary directory is removed"
    );

    let hole = call(&["--allow-read", "/", "escape:application", "/"]);
    assert_eq!(hole.status.code(), Some(1));
    let message = stderr(&hole);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("ferrocorn call: error: --allow-read"),
        "{message}"
    );
}

#[test]
fn an_environment_variable_the_server_refuses_is_one_line_not_a_panic() {
    let output = Command::new(BIN)
        .args(["call", "probe", "/"])
        .current_dir(apps_dir())
        .env("FORWARDED_ALLOW_IPS", "not-an-address")
        .stdin(Stdio::null())
        .output()
        .expect("run ferrocorn call");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("not-an-address"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(stdout(&output).is_empty());
}
