//! The app's `ssl` module (RustPython's rustls-based `_ssl` over ring):
//! verification on by default against the host's store, a CA of the app's
//! own, hostname checks, client certificates, from a sandboxed worker with
//! only `--allow-connect`, and from an empty root with the compiled-in
//! Mozilla roots. The HTTPS servers are ferrocorn itself over TLS.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::pki::Pki;
use common::{BIN, Server, framework_pythonpath, scratch_dir, server_side_connections};

/// An HTTPS server (probe.py) with the PKI's certificate for localhost.
fn https_server(pki: &Pki, extra: &[&str]) -> Server {
    let mut args: Vec<String> = pki.server_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("probe:application".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

fn run_python(dir: &Path, code: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .args(["run", "-c", code])
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("ferrocorn run")
}

fn lines(output: &Output) -> Vec<String> {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Python that reports, one line each, how a TLS handshake with the
/// server at `argv[1]` ends for each context it tries.
const HANDSHAKES: &str = r#"
import socket, ssl, sys, urllib.request
port, ca, stranger = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def handshake(context, name="localhost"):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                return "accepted %s %s" % (tls.version(), tls.selected_alpn_protocol())
    except ssl.SSLCertVerificationError as error:
        return "refused %s: %s" % (error.reason, error.verify_message)

ours = ssl.create_default_context(cafile=ca)
ours.set_alpn_protocols(["http/1.1"])
print("our CA:", handshake(ours))
print("a stranger's CA:", handshake(ssl.create_default_context(cafile=stranger)))
print("the host's store:", handshake(ssl.create_default_context()))
print("another name:", handshake(ours, "wrong.example"))
with urllib.request.urlopen("https://localhost:%d/key?wsgi.url_scheme" % port, context=ours, timeout=10) as response:
    print("urlopen:", response.status, response.read().decode())
"#;

#[test]
fn the_apps_ssl_accepts_its_ca_and_refuses_a_strangers_the_hosts_and_another_name() {
    let pki = Pki::new("app-ssl-verify");
    let server = https_server(&pki, &[]);
    let port = server.addr().port().to_string();
    let output = run_python(
        &pki.dir,
        HANDSHAKES,
        &[&port, &pki.path("ca.pem"), &pki.path("stranger.pem")],
        &[],
    );
    let lines = lines(&output);
    assert_eq!(lines[0], "our CA: accepted TLSv1.3 http/1.1", "{lines:?}");
    assert!(
        lines[1].starts_with("a stranger's CA: refused CERTIFICATE_VERIFY_FAILED"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("the host's store: refused CERTIFICATE_VERIFY_FAILED"),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with("another name: refused CERTIFICATE_VERIFY_FAILED")
            && lines[3].to_lowercase().contains("hostname mismatch"),
        "{lines:?}"
    );
    assert_eq!(lines[4], "urlopen: 200 https", "{lines:?}");
}

#[test]
fn ssl_cert_file_names_the_default_store_and_a_client_certificate_is_presented() {
    let pki = Pki::new("app-ssl-env-client");
    let ca = pki.path("ca.pem");
    let server = https_server(&pki, &["--ca-certs", &ca, "--cert-reqs", "2"]);
    let port = server.addr().port().to_string();
    let code = r#"
import socket, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def request(context):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /key?wsgi.url_scheme HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
                return answer.split(b"\r\n")[0].decode()
    except (ssl.SSLError, OSError) as error:
        return "failed: %s" % type(error).__name__
with_certificate = ssl.create_default_context()
with_certificate.load_cert_chain(cert, key)
print(request(with_certificate))
print(request(ssl.create_default_context()))
"#;
    let output = run_python(
        &pki.dir,
        code,
        &[&port, &pki.path("client.pem"), &pki.path("client.key")],
        &[("SSL_CERT_FILE", &ca)],
    );
    let lines = lines(&output);
    assert_eq!(lines[0], "HTTP/1.1 200 OK", "{lines:?}");
    assert!(lines[1].starts_with("failed: "), "{lines:?}");
}

/// A WSGI app that calls `requests.get` on https://localhost:PORT (the
/// query string), trusting the CA that `SSL_CERT_FILE` names, and reports
/// what happened; `/store` reports what the app's `ssl` trusts by default.
const FETCHING_APP: &str = r#"
import os, ssl
import requests

def application(environ, start_response):
    if environ["PATH_INFO"] == "/store":
        with open("/etc/ssl/certs/ca-certificates.crt", "rb") as host_store:
            body = "default CAs %d, host store %d bytes" % (
                ssl.create_default_context().cert_store_stats()["x509_ca"], len(host_store.read()))
    else:
        port = environ["QUERY_STRING"]
        try:
            response = requests.get("https://localhost:%s/key?wsgi.url_scheme" % port,
                                    verify=os.environ["SSL_CERT_FILE"], timeout=10)
            body = "fetched %d %s" % (response.status_code, response.text)
        except Exception as error:
            body = "failed %s" % error
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

#[test]
fn a_sandboxed_worker_calls_https_with_requests_given_only_allow_connect() {
    let pki = Pki::new("app-ssl-sandbox");
    let allowed = https_server(&pki, &[]);
    let forbidden = https_server(&pki, &[]);
    let app_dir = scratch_dir("app-ssl-sandbox-app");
    std::fs::write(app_dir.join("fetch.py"), FETCHING_APP).unwrap();
    // Outside every directory the app may read: only SSL_CERT_FILE opens it.
    let cert_file = format!("SSL_CERT_FILE={}", pki.path("ca.pem"));
    let connect = format!("localhost:{}", allowed.addr().port());
    let pythonpath = framework_pythonpath();
    let worker = Server::start_with(
        &app_dir,
        &[
            "--sandbox",
            "--allow-connect",
            &connect,
            "-e",
            &cert_file,
            "--pythonpath",
            &pythonpath,
            "fetch:application",
        ],
        &[],
    );
    let fetched = worker.get(&format!("/?{}", allowed.addr().port())).text();
    assert_eq!(fetched, "fetched 200 https");

    let refused = worker.get(&format!("/?{}", forbidden.addr().port())).text();
    assert!(
        refused.starts_with("failed") && refused.contains("not allowed"),
        "{refused}"
    );
    assert_eq!(
        server_side_connections(forbidden.addr()),
        0,
        "the refused connection reached the server"
    );

    // The default context trusts the one CA of SSL_CERT_FILE (a store it
    // could not read would leave the compiled-in roots), and the host's
    // store is readable without --allow-read.
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        let store = worker.get("/store").text();
        assert!(
            store.starts_with("default CAs 1, host store ") && !store.ends_with(" 0 bytes"),
            "{store}"
        );
    }
}

#[test]
fn from_an_empty_root_the_compiled_in_roots_are_the_default_store() {
    let pki = Pki::new("app-ssl-empty-root");
    let server = https_server(&pki, &[]);
    let root = scratch_dir("app-ssl-empty-root-dir");
    std::fs::copy(BIN, root.join("ferrocorn")).unwrap();
    std::fs::copy(pki.dir.join("ca.pem"), root.join("ca.pem")).unwrap();
    let code = r#"
import ssl, sys, urllib.request
# An empty root has no /etc/hosts: the certificate names 127.0.0.1 too.
url = "https://127.0.0.1:%s/key?wsgi.url_scheme" % sys.argv[1]
print(ssl.create_default_context().cert_store_stats()["x509_ca"] > 100)
print(urllib.request.urlopen(url, context=ssl.create_default_context(cafile="/ca.pem"), timeout=10).read().decode())
try:
    urllib.request.urlopen(url, timeout=10)
except Exception as error:
    print(getattr(error, "reason", error).reason)
"#;
    let port = server.addr().port().to_string();
    let output = Command::new("/usr/sbin/chroot")
        .env_clear()
        .arg(&root)
        .args(["/ferrocorn", "run", "-c", code, &port])
        .stdin(Stdio::null())
        .output()
        .expect("chroot");
    assert_eq!(
        lines(&output),
        ["True", "https", "CERTIFICATE_VERIFY_FAILED"]
    );
    std::fs::remove_dir_all(&root).unwrap();
}
