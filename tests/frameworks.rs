//! Real frameworks through the real server: every route of the Flask,
//! Bottle, Falcon and Django examples, and an app wrapped in
//! wsgiref.validate. Their pinned wheels (examples/requirements*.txt) are
//! fetched once with pip into the target directory and reused.

mod common;

use std::path::Path;

use common::{Client, Response, Server, framework_pythonpath};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn start(app: &str, extra: &[&str]) -> Server {
    let pythonpath = framework_pythonpath();
    let mut args = vec!["--pythonpath", &pythonpath];
    args.extend_from_slice(extra);
    args.push(app);
    Server::start_with(repo(), &args, &[])
}

fn request(server: &Server, raw: String) -> Response {
    let mut client = Client::new(server.connect());
    client.send(raw.as_bytes());
    client.response(false).expect("a response")
}

fn get(server: &Server, path: &str, extra: &str) -> Response {
    request(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n"),
    )
}

fn post(server: &Server, content_type: &str, body: &str) -> Response {
    request(
        server,
        format!(
            "POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The same contract for every framework example, served with `extra` flags.
fn exercise_every_route(app: &str, name: &str, extra: &[&str]) {
    let server = start(app, extra);
    let compact = |r: &Response| r.text().replace([' ', '\n'], "");

    let index = get(&server, "/", "");
    assert_eq!((index.status, index.text()), (200, format!("{name} index")));

    let page = get(&server, "/hello/Ann", "");
    assert_eq!(page.status, 200);
    assert!(
        compact(&page).contains("<h1>HelloAnn</h1><ul><li>1</li><li>2</li><li>3</li></ul>"),
        "{}",
        page.text()
    );

    let json = get(&server, "/api/items/7", "");
    assert_eq!(json.status, 200);
    assert!(
        json.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        compact(&json).contains(r#""id":7"#) && compact(&json).contains(r#""name":"item7""#),
        "{}",
        json.text()
    );

    let form = post(
        &server,
        "application/x-www-form-urlencoded",
        "a=1&b=two+words",
    );
    assert_eq!(form.status, 200, "{}", form.text());
    assert!(
        compact(&form).contains(r#""fields":{"a":"1","b":"twowords"}"#),
        "{}",
        form.text()
    );

    let boundary = "XyZbOuNdArY";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"up\"; filename=\"up.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nfile body\r\n--{boundary}--\r\n"
    );
    let upload = post(
        &server,
        &format!("multipart/form-data; boundary={boundary}"),
        &multipart,
    );
    assert_eq!(upload.status, 200, "{}", upload.text());
    assert!(
        compact(&upload).contains(r#""fields":{"a":"1"}"#),
        "{}",
        upload.text()
    );
    assert!(
        compact(&upload).contains(r#""files":{"up":"filebody"}"#),
        "{}",
        upload.text()
    );

    let first = get(&server, "/cookie", "");
    let set_cookie = first.header("set-cookie").expect("Set-Cookie");
    assert!(set_cookie.starts_with("flavour=oat"), "{set_cookie}");
    let second = get(&server, "/cookie", "Cookie: flavour=oat\r\n");
    assert_eq!(second.text(), "flavour=oat");

    let moved = get(&server, "/redirect", "");
    assert!(matches!(moved.status, 302 | 303), "{}", moved.status);
    assert!(
        moved
            .header("location")
            .unwrap()
            .ends_with("/hello/redirected")
    );

    let missing = get(&server, "/no/such/page", "");
    assert_eq!(
        (missing.status, missing.text()),
        (404, "custom not found".to_owned())
    );

    let broken = get(&server, "/boom", "");
    assert_eq!(
        (broken.status, broken.text()),
        (500, "custom error page".to_owned())
    );
}

#[test]
fn flask_example_serves_every_route() {
    exercise_every_route("examples.flask_app:app", "flask", &[]);
}

#[test]
fn bottle_example_serves_every_route() {
    exercise_every_route("examples.bottle_app:app", "bottle", &[]);
}

#[test]
fn falcon_example_serves_every_route() {
    exercise_every_route("examples.falcon_app:app", "falcon", &[]);
}

#[test]
fn django_example_serves_every_route() {
    exercise_every_route("examples.django_app:application", "django", &[]);
}

// Under --sandbox with no allowance at all (README "Sandbox": the app's
// directory and --pythonpath are readable, uploads spill to the private
// temporary directory).

#[test]
fn flask_example_serves_every_route_under_the_sandbox() {
    exercise_every_route("examples.flask_app:app", "flask", &["--sandbox"]);
}

#[test]
fn bottle_example_serves_every_route_under_the_sandbox() {
    exercise_every_route("examples.bottle_app:app", "bottle", &["--sandbox"]);
}

#[test]
fn falcon_example_serves_every_route_under_the_sandbox() {
    exercise_every_route("examples.falcon_app:app", "falcon", &["--sandbox"]);
}

#[test]
fn django_example_serves_every_route_under_the_sandbox() {
    exercise_every_route("examples.django_app:application", "django", &["--sandbox"]);
}

#[test]
fn an_app_wrapped_in_wsgiref_validate_finds_nothing_to_complain_about() {
    // The access log shares the error log's stream, after anything the
    // request made the app or wsgiref write: once the last request's line is
    // there, the absence below is not a line merely late.
    let server = Server::start(&["--access-logfile", "/dev/stderr", "validated:application"]);
    let mut client = Client::new(server.connect());
    client.send(b"GET /?q=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.response(false).unwrap().text(), "validated GET");
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(
        client.response(false).unwrap().text(),
        "validated POST hello"
    );
    client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.response(true).unwrap().status, 200);
    assert!(
        server.wait_for_log("\"HEAD / HTTP/1.1\" 200"),
        "{}",
        server.log()
    );
    let log = server.log();
    assert!(
        !log.contains("Traceback")
            && !log.contains("WSGIWarning")
            && !log.contains("AssertionError"),
        "{log}"
    );
}

#[test]
fn sqlite3_is_built_into_the_binary() {
    let server = Server::start(&["sqlite_app:application"]);
    let text = server.get("/").text();
    assert!(
        text.starts_with("sqlite 3.") && text.ends_with("answer 42"),
        "{text}"
    );
}
