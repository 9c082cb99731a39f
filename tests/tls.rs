//! TLS on the server's TCP binds (`--certfile`/`--keyfile`, Gunicorn's
//! settings): real clients (rustls, curl, Python's ssl module, openssl
//! s_client) against certificates each test makes with openssl(1).

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pki::{Pki, openssl};
use common::{Client, Response, Server, TIMEOUT, apps_dir, run_to_exit, wait_until};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

type TlsClient = Client<StreamOwned<ClientConnection, TcpStream>>;

impl Pki {
    fn der(&self, file: &str) -> Vec<u8> {
        CertificateDer::from_pem_file(self.dir.join(file))
            .unwrap()
            .to_vec()
    }

    /// A rustls client trusting the CA, presenting CLIENT's certificate.
    fn client_config(&self, client: Option<&str>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(self.dir.join("ca.pem")).unwrap())
            .unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let mut config = match client {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let chain = vec![
                    CertificateDer::from_pem_file(self.dir.join(format!("{name}.pem"))).unwrap(),
                ];
                let key =
                    PrivateKeyDer::from_pem_file(self.dir.join(format!("{name}.key"))).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

fn start(pki: &Pki, extra: &[&str]) -> Server {
    let mut args: Vec<String> = pki.server_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("probe:application".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    assert!(
        server.log().contains("Listening at: https://"),
        "{}",
        server.log()
    );
    server
}

/// A TLS connection with its handshake done (the server's verdict on a
/// client certificate may still come with the first read, in TLS 1.3).
fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> io::Result<TlsClient> {
    connect_after(addr, config, &[])
}

/// The environ's value for `key` (probe.py's /key route), over `client`.
fn environ_value(client: &mut TlsClient, key: &str) -> String {
    client.send(format!("GET /key?{key} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    client.response(false).expect("a response").text()
}

#[test]
fn requests_over_tls_keep_alive_pipelined_chunked_and_1mb_both_ways() {
    let pki = Pki::new("tls-requests");
    let server = start(&pki, &["--threads", "2"]);
    let mut client = connect(server.addr(), &pki.client_config(None)).unwrap();
    assert_eq!(client.stream().conn.alpn_protocol(), Some(&b"http/1.1"[..]));

    assert_eq!(environ_value(&mut client, "wsgi.url_scheme"), "https");
    assert_eq!(environ_value(&mut client, "HTTPS"), "on");
    assert_eq!(environ_value(&mut client, "SSL_PROTOCOL"), "TLSv1.3");
    let cipher = environ_value(&mut client, "SSL_CIPHER");
    assert!(cipher.starts_with("TLS13_"), "{cipher}");
    assert_eq!(environ_value(&mut client, "SSL_CLIENT_VERIFY"), "NONE");
    assert_eq!(environ_value(&mut client, "SSL_CLIENT_CERT"), "(absent)");

    // Pipelined, on the same (kept-alive) connection.
    client.send(
        b"GET /big?10 HTTP/1.1\r\nHost: l\r\n\r\nGET /big?20 HTTP/1.1\r\nHost: l\r\n\r\nGET /big?30 HTTP/1.1\r\nHost: l\r\n\r\n",
    );
    for size in [10, 20, 30] {
        let response = client.response(false).unwrap();
        assert_eq!((response.status, response.body.len()), (200, size));
    }

    // A chunked body.
    client.send(b"POST /input HTTP/1.1\r\nHost: l\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    let chunked = client.response(false).unwrap();
    assert!(
        chunked.text().contains("\"length\": 11"),
        "{}",
        chunked.text()
    );

    // 1 MB up, then 1 MB down.
    let upload: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let expected_sum = upload.iter().map(|b| *b as u64).sum::<u64>() % 1_000_003;
    client.send(
        format!(
            "POST /input HTTP/1.1\r\nHost: l\r\nContent-Length: {}\r\n\r\n",
            upload.len()
        )
        .as_bytes(),
    );
    client.send(&upload);
    let uploaded = client.response(false).unwrap();
    assert!(
        uploaded
            .text()
            .contains(&format!("\"sum\": {expected_sum}")),
        "{}",
        uploaded.text()
    );
    client.send(b"GET /big HTTP/1.1\r\nHost: l\r\n\r\n");
    let downloaded = client.response(false).unwrap();
    assert_eq!(downloaded.body, vec![b'x'; 1 << 20]);

    // The server closes with close_notify: a clean end, not a truncation.
    client.send(b"GET /big?1 HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n");
    assert_eq!(client.response(false).unwrap().body, b"x");
    let mut rest = Vec::new();
    let end = client.reader_mut().read_to_end(&mut rest);
    assert!(matches!(end, Ok(0)), "{end:?}");
}

#[test]
fn curl_pythons_ssl_and_openssl_s_client_are_served() {
    let pki = Pki::new("tls-clients");
    let server = start(&pki, &[]);
    let port = server.addr().port().to_string();

    let curl = Command::new("curl")
        .args(["-sS", "--cacert", &pki.path("ca.pem"), "--max-time", "20"])
        .args(["--data-binary", "curl body"])
        .arg(format!("https://localhost:{port}/input"))
        .output()
        .expect("curl");
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert!(String::from_utf8_lossy(&curl.stdout).contains("\"length\": 9"));

    let python = r#"
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /key?wsgi.url_scheme HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        print(tls.version(), tls.selected_alpn_protocol())
        print(data.decode())
"#;
    let output = Command::new("python3")
        .args(["-c", python, &pki.path("ca.pem"), &port])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.starts_with("TLSv1.3"), "{text}");
    assert!(text.trim_end().ends_with("\r\n\r\nhttps"), "{text}");

    // TLS 1.2 only, as an older client would.
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
        ])
        .args([
            "-CAfile",
            &pki.path("ca.pem"),
            "-alpn",
            "http/1.1",
            "-tls1_2",
            "-ign_eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    s_client
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /key?SSL_CIPHER HTTP/1.1\r\nHost: localhost\r\n\r\nGET /key?SSL_PROTOCOL HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let output = s_client.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("\r\n\r\nTLS_ECDHE_RSA_WITH_"), "{text}");
    assert!(text.contains("\r\n\r\nTLSv1.2"), "{text}");
}

/// Sends one request and reads the response; `None` if the server ended
/// the connection instead (a refused client certificate).
fn try_request(addr: SocketAddr, config: &Arc<ClientConfig>, path: &str) -> Option<Response> {
    let mut client = connect(addr, config).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    client
        .reader_mut()
        .get_mut()
        .write_all(request.as_bytes())
        .ok()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.response(false)))
        .ok()
        .flatten()
}

#[test]
fn mutual_tls_takes_a_certificate_of_the_ca_and_refuses_none_or_a_strangers() {
    let pki = Pki::new("tls-mutual");
    let ca = pki.path("ca.pem");
    let server = start(&pki, &["--ca-certs", &ca, "--cert-reqs", "2"]);
    let mut trusted = connect(server.addr(), &pki.client_config(Some("client"))).unwrap();
    assert_eq!(environ_value(&mut trusted, "SSL_CLIENT_VERIFY"), "SUCCESS");
    let presented = std::fs::read_to_string(pki.dir.join("client.pem")).unwrap();
    assert_eq!(
        environ_value(&mut trusted, "SSL_CLIENT_CERT").trim(),
        presented.trim()
    );

    assert!(try_request(server.addr(), &pki.client_config(None), "/key?HTTPS").is_none());
    assert!(
        try_request(
            server.addr(),
            &pki.client_config(Some("stranger-client")),
            "/key?HTTPS"
        )
        .is_none()
    );
    // The refusals cost nothing else: the trusted client is still served.
    assert!(
        try_request(
            server.addr(),
            &pki.client_config(Some("client")),
            "/key?HTTPS"
        )
        .is_some()
    );
    drop(server);

    let optional = start(&pki, &["--ca-certs", &ca, "--cert-reqs", "optional"]);
    let without = try_request(
        optional.addr(),
        &pki.client_config(None),
        "/key?SSL_CLIENT_VERIFY",
    )
    .expect("optional: a client without a certificate is served");
    assert_eq!(without.text(), "NONE");
    assert!(
        try_request(
            optional.addr(),
            &pki.client_config(Some("stranger-client")),
            "/key?HTTPS"
        )
        .is_none()
    );
}

#[test]
fn plain_http_or_garbage_to_the_tls_port_is_closed_and_the_server_goes_on() {
    let pki = Pki::new("tls-plaintext");
    let server = start(&pki, &[]);
    let mut plain = server.connect();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    plain.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("speaks HTTPS"), "{answer}");

    let mut garbage = server.connect();
    garbage
        .write_all(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1"),
        "{rest:?}"
    );

    let served = try_request(server.addr(), &pki.client_config(None), "/big?5").unwrap();
    assert_eq!(served.body, b"xxxxx");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn a_stalled_handshake_times_out_while_other_clients_are_served() {
    let pki = Pki::new("tls-stall");
    let server = start(&pki, &["--read-timeout", "2"]);
    let mut stalled = server.connect();
    // A handshake record header announcing 255 bytes, then nothing more.
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xff, 0x01])
        .unwrap();
    let stalled_at = Instant::now();
    let config = pki.client_config(None);
    for _ in 0..5 {
        let started = Instant::now();
        assert!(try_request(server.addr(), &config, "/big?3").is_some());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    stalled.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut byte = [0u8; 1];
    let end = stalled.read(&mut byte);
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
    let waited = stalled_at.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
}

#[test]
fn hup_reloads_the_certificate_without_a_failed_request_and_keeps_it_when_the_new_one_is_broken() {
    let pki = Pki::new("tls-reload");
    let server = start(&pki, &["-w", "2"]);
    let old = pki.der("server.pem");
    let config = pki.client_config(None);
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failures) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    // Every certificate met, and the latest run of connections that met the
    // same one (the certificate, how many in a row).
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let run = Arc::new(Mutex::new((Vec::<u8>::new(), 0usize)));
    let looping = {
        let (stop, served, failures, seen, run, addr) = (
            stop.clone(),
            served.clone(),
            failures.clone(),
            seen.clone(),
            run.clone(),
            server.addr(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let result = connect(addr, &config).and_then(|mut client| {
                    let certificate = client.stream().conn.peer_certificates().unwrap()[0].to_vec();
                    client.send(b"GET /big?2 HTTP/1.1\r\nHost: l\r\n\r\n");
                    match client.response(false) {
                        Some(r) if r.status == 200 => Ok(certificate),
                        other => Err(io::Error::other(format!("{other:?}"))),
                    }
                });
                match result {
                    Ok(certificate) => {
                        served.fetch_add(1, Ordering::SeqCst);
                        let mut seen = seen.lock().unwrap();
                        if !seen.contains(&certificate) {
                            seen.push(certificate.clone());
                        }
                        let mut run = run.lock().unwrap();
                        if run.0 == certificate {
                            run.1 += 1;
                        } else {
                            *run = (certificate, 1);
                        }
                    }
                    Err(error) => failures.lock().unwrap().push(error.to_string()),
                }
            }
        })
    };
    // Until the old workers are gone: 20 connections in a row meet `wanted`.
    let settled_on = |wanted: &Vec<u8>| {
        wait_until(TIMEOUT, || {
            let run = run.lock().unwrap();
            run.0 == *wanted && run.1 >= 20
        })
    };
    assert!(settled_on(&old));
    // A new pair in place of the old, then HUP.
    pki.issue("renewed", "ca", "ec", "2");
    std::fs::copy(pki.dir.join("renewed.pem"), pki.dir.join("server.pem")).unwrap();
    std::fs::copy(pki.dir.join("renewed.key"), pki.dir.join("server.key")).unwrap();
    let renewed = pki.der("renewed.pem");
    server.signal(libc::SIGHUP);
    assert!(settled_on(&renewed), "{}", server.log());
    // A broken key: the server says so and goes on with the renewed pair.
    std::fs::write(pki.dir.join("server.key"), "not a key\n").unwrap();
    let booted = server.log().matches("Booted worker").count();
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("the new workers keep the certificate already loaded"));
    assert!(wait_until(TIMEOUT, || server
        .log()
        .matches("Booted worker")
        .count()
        >= booted + 2));
    *run.lock().unwrap() = (Vec::new(), 0);
    assert!(settled_on(&renewed), "{}", server.log());
    stop.store(true, Ordering::SeqCst);
    looping.join().unwrap();
    assert_eq!(failures.lock().unwrap().as_slice(), &[] as &[String]);
    assert_eq!(seen.lock().unwrap().as_slice(), &[old, renewed]);
}

#[test]
fn start_up_errors_name_the_file_and_the_problem() {
    let pki = Pki::new("tls-errors");
    pki.issue("expired", "ca", "ec", "-1");
    openssl(
        &pki.dir,
        &[
            "pkey",
            "-in",
            "server.key",
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            "encrypted.key",
        ],
    );
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    let missing = pki.path("missing.pem");
    let dir = pki.dir.display().to_string();
    let app = apps_dir().join("probe.py").display().to_string();
    let (other_key, expired, expired_key, encrypted) = (
        pki.path("client.key"),
        pki.path("expired.pem"),
        pki.path("expired.key"),
        pki.path("encrypted.key"),
    );
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--certfile", &missing, "--keyfile", &key],
            vec![&missing, "No such file"],
        ),
        (
            vec!["--certfile", &dir, "--keyfile", &key],
            vec![&dir, "directory"],
        ),
        (
            vec!["--certfile", &app, "--keyfile", &key],
            vec![&app, "no certificate in it"],
        ),
        (
            vec!["--certfile", &cert, "--keyfile", &other_key],
            vec![&other_key, "does not belong to the certificate"],
        ),
        (
            vec!["--certfile", &expired, "--keyfile", &expired_key],
            vec![&expired, "expired on"],
        ),
        (
            vec!["--certfile", &cert, "--keyfile", &encrypted],
            vec![&encrypted, "encrypted"],
        ),
        (
            vec!["--certfile", &cert, "--keyfile", &key, "--cert-reqs", "2"],
            vec!["needs --ca-certs"],
        ),
        (
            vec![
                "--certfile",
                &cert,
                "--keyfile",
                &key,
                "--ciphers",
                "HIGH:BOGUS",
            ],
            vec!["\"BOGUS\""],
        ),
        (vec!["--keyfile", &key], vec!["--keyfile needs --certfile"]),
    ];
    for (mut args, expected) in cases {
        args.push("probe:application");
        let (status, stderr) = run_to_exit(&apps_dir(), &args);
        assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("ferrocorn: error: "), "{args:?}: {stderr}");
        for needle in expected {
            assert!(
                last.contains(needle),
                "{args:?}: {needle:?} not in {last:?}"
            );
        }
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Booting worker"),
            "{stderr}"
        );
    }
}

#[test]
fn gunicorns_settings_in_a_configuration_file_serve_tls() {
    let pki = Pki::new("tls-config-file");
    let conf = pki.dir.join("gunicorn.conf.py");
    std::fs::write(
        &conf,
        format!(
            "certfile = {:?}\nkeyfile = {:?}\nca_certs = {:?}\ncert_reqs = 1\nciphers = 'ECDHE+AESGCM:!aNULL'\nsuppress_ragged_eofs = True\ndo_handshake_on_connect = False\n",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem"),
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let server = Server::start(&["-c", &conf, "probe:application"]);
    assert!(
        server.log().contains("suppress_ragged_eofs"),
        "{}",
        server.log()
    );
    let mut client = connect(server.addr(), &pki.client_config(Some("client"))).unwrap();
    assert_eq!(environ_value(&mut client, "SSL_CLIENT_VERIFY"), "SUCCESS");
    let cipher = environ_value(&mut client, "SSL_CIPHER");
    assert!(cipher.contains("GCM"), "{cipher}");
}

#[test]
fn under_the_sandbox_the_app_is_served_over_tls_but_cannot_read_the_key() {
    let pki = Pki::new("tls-sandbox");
    let mut args = pki.server_args();
    args.extend(["--sandbox".into(), "escape:application".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    let key = pki.path("server.key");
    let response = try_request(
        server.addr(),
        &pki.client_config(None),
        &format!("/try/read?path={key}"),
    )
    .unwrap();
    let text = response.text();
    assert!(text.contains("\"ok\": false"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[test]
fn the_deploy_example_serves_https_with_workers_that_cannot_read_the_key() {
    let pki = Pki::new("tls-example");
    std::fs::copy(pki.dir.join("server.pem"), pki.dir.join("fullchain.pem")).unwrap();
    std::fs::copy(pki.dir.join("server.key"), pki.dir.join("privkey.pem")).unwrap();
    let mut key_mode = std::fs::metadata(pki.dir.join("privkey.pem"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut key_mode, 0o600);
    std::fs::set_permissions(pki.dir.join("privkey.pem"), key_mode).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy/tls.conf.py");
    let example = example.display().to_string();
    let dir = pki.dir.display().to_string();
    let env = [
        ("CERT_DIR", dir.as_str()),
        ("BIND", "127.0.0.1:0"),
        ("WORKER_USER", "nobody"),
    ];

    let mut check = Command::new(common::BIN);
    check
        .current_dir(apps_dir())
        .args(["--check-config", "-c", &example, "probe:application"]);
    let checked = check.envs(env).output().unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(0), "{stderr}");

    let server = Server::start_with(&apps_dir(), &["-c", &example, "escape:application"], &env);
    let skipped = "skipping suites rustls does not offer: DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
    assert!(server.log().contains(skipped), "{}", server.log());
    // Served over TLS by workers running as nobody, to whom the key (root's,
    // mode 0600, read by the arbiter) is closed.
    let key = pki.path("privkey.pem");
    let read = try_request(
        server.addr(),
        &pki.client_config(None),
        &format!("/try/read?path={key}"),
    )
    .unwrap();
    assert!(read.text().contains("\"errno\": 13"), "{}", read.text());
    drop(server);

    // --check-config reads the TLS files too.
    std::fs::write(pki.dir.join("privkey.pem"), "broken\n").unwrap();
    let mut check = Command::new(common::BIN);
    check
        .current_dir(apps_dir())
        .args(["--check-config", "-c", &example, "probe:application"]);
    let checked = check.envs(env).output().unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("privkey.pem: no private key in it"),
        "{stderr}"
    );
}

#[test]
fn under_the_sandbox_a_key_the_app_may_read_is_warned_about() {
    let pki = Pki::new("tls-sandbox-open");
    let mut args = pki.server_args();
    let dir = pki.dir.display().to_string();
    args.extend([
        "--sandbox".into(),
        "--allow-read".into(),
        dir.clone(),
        "escape:application".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    let key = pki.path("server.key");
    let warning = format!("--sandbox: the app can read the TLS key {key}: it is under {dir}");
    assert!(server.log().contains(&warning), "{}", server.log());
    let response = try_request(
        server.addr(),
        &pki.client_config(None),
        &format!("/try/read?path={key}"),
    )
    .unwrap();
    assert!(
        response.text().contains("PRIVATE KEY"),
        "{}",
        response.text()
    );
}

#[test]
fn tls_is_on_every_tcp_bind_and_unix_socket_binds_stay_plain() {
    let pki = Pki::new("tls-binds");
    let socket = pki.dir.join("plain.sock");
    let unix_bind = format!("unix:{}", socket.display());
    let mut args = pki.server_args();
    args.extend([
        "-b".into(),
        unix_bind,
        "-b".into(),
        "127.0.0.1:0".into(),
        "probe:application".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    let over_tls = try_request(
        server.addr(),
        &pki.client_config(None),
        "/key?wsgi.url_scheme",
    )
    .unwrap();
    assert_eq!(over_tls.text(), "https");
    let mut plain = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    plain.set_read_timeout(Some(TIMEOUT)).unwrap();
    plain
        .write_all(b"GET /key?wsgi.url_scheme HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhttp"), "{answer}");
}

#[test]
fn a_client_resumes_its_tls_session_on_any_worker() {
    let pki = Pki::new("tls-resume");
    let server = start(&pki, &["-w", "2"]);
    // The client keeps the tickets it is given (rustls's default store).
    let config = pki.client_config(None);
    let visit = || {
        let mut client = connect(server.addr(), &config).unwrap();
        let kind = client.stream().conn.handshake_kind();
        client.send(b"GET /pid HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n");
        (kind, client.response(false).unwrap().text())
    };
    // A worker takes tickets once it has issued one itself (rustls rejects
    // tickets longer than any it made, against partitioning oracles).
    let mut warmed = std::collections::HashSet::new();
    assert!(wait_until(TIMEOUT, || {
        warmed.insert(visit().1);
        warmed.len() == 2
    }));
    // From then on every connection resumes, also on the worker that did
    // not issue the ticket: both workers hold the keys the arbiter made.
    let mut visits: Vec<(Option<rustls::HandshakeKind>, String)> = Vec::new();
    let crossed = |visits: &[(Option<rustls::HandshakeKind>, String)]| {
        visits
            .windows(2)
            .filter(|pair| pair[0].1 != pair[1].1)
            .count()
    };
    assert!(wait_until(TIMEOUT, || {
        visits.push(visit());
        visits.len() >= 10 && crossed(&visits) >= 2
    }));
    assert!(
        visits
            .iter()
            .all(|(kind, _)| *kind == Some(rustls::HandshakeKind::Resumed)),
        "{visits:?}"
    );
}

/// A TLS connection whose socket first carries `preamble` in the clear, as
/// HAProxy's `send-proxy` (or an AWS NLB passing TLS through) sends it.
fn connect_after(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    preamble: &[u8],
) -> io::Result<TlsClient> {
    let mut socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.write_all(preamble)?;
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(connection, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Client::new(stream))
}

/// PROXY protocol v2 for a TCP4 client `source:port` (HAProxy's spec, 2.2).
fn proxy_v2(source: [u8; 4], port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
    header.extend_from_slice(&source);
    header.extend_from_slice(&[127, 0, 0, 1]);
    header.extend_from_slice(&port.to_be_bytes());
    header.extend_from_slice(&443u16.to_be_bytes());
    header
}

#[test]
fn a_proxy_header_before_the_tls_handshake_names_the_client_v1_and_v2() {
    let pki = Pki::new("tls-proxy");
    let server = start(
        &pki,
        &["--proxy-protocol", "--proxy-allow-from", "127.0.0.1"],
    );
    let config = pki.client_config(None);
    let cases: [(&str, Vec<u8>, &str, &str); 3] = [
        (
            "v1",
            b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 443\r\n".to_vec(),
            "203.0.113.7",
            "51000",
        ),
        (
            "v2",
            proxy_v2([198, 51, 100, 9], 4321),
            "198.51.100.9",
            "4321",
        ),
        ("no header", Vec::new(), "127.0.0.1", ""),
    ];
    for (what, preamble, address, port) in cases {
        let mut client = connect_after(server.addr(), &config, &preamble)
            .unwrap_or_else(|e| panic!("{what}: handshake failed: {e}\n{}", server.log()));
        assert_eq!(environ_value(&mut client, "REMOTE_ADDR"), address, "{what}");
        if !port.is_empty() {
            assert_eq!(environ_value(&mut client, "REMOTE_PORT"), port, "{what}");
        }
        assert_eq!(
            environ_value(&mut client, "wsgi.url_scheme"),
            "https",
            "{what}"
        );
    }

    // curl's own PROXY v1 line (--haproxy-protocol) before its handshake.
    let curl = Command::new("curl")
        .args(["-sS", "--haproxy-protocol", "--cacert", &pki.path("ca.pem")])
        .args(["--max-time", "20"])
        .arg(format!(
            "https://localhost:{}/key?wsgi.url_scheme",
            server.addr().port()
        ))
        .output()
        .expect("curl");
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "https");

    // Plain HTTP after the header gets the same refusal as without one.
    let mut plain = server.connect();
    plain
        .write_all(
            b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 443\r\nGET / HTTP/1.1\r\nHost: l\r\n\r\n",
        )
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("speaks HTTPS, not plain HTTP"), "{answer}");

    // A malformed header before the handshake: the connection is closed,
    // and the server goes on.
    let refused = connect_after(server.addr(), &config, b"PROXY TCP4 nonsense\r\n");
    assert!(refused.is_err(), "a malformed PROXY header was taken");
    let mut client = connect_after(server.addr(), &config, &proxy_v2([10, 0, 0, 1], 1)).unwrap();
    assert_eq!(environ_value(&mut client, "REMOTE_ADDR"), "10.0.0.1");
}

#[test]
fn a_proxy_header_before_tls_from_a_peer_not_allowed_is_refused() {
    let pki = Pki::new("tls-proxy-refused");
    let server = start(
        &pki,
        &["--proxy-protocol", "--proxy-allow-from", "10.9.9.9"],
    );
    let config = pki.client_config(None);
    // Closed before any request: the handshake fails, or (TLS 1.3, the
    // server's flight already out) the first read finds the connection gone.
    if let Ok(mut client) = connect_after(server.addr(), &config, &proxy_v2([203, 0, 113, 7], 4000))
    {
        client.send(b"GET /key?REMOTE_ADDR HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(client.response(false).is_none(), "a request was served");
    }
    // The same client without the header is served.
    let mut plain = connect(server.addr(), &config).unwrap();
    assert_eq!(environ_value(&mut plain, "REMOTE_ADDR"), "127.0.0.1");
}
