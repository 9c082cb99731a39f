//! examples/embed.rs, as `cargo test` built it: a Rust program that serves
//! examples/embed_app.py and gives it one native function.

use std::path::Path;
use std::process::Command;

#[test]
fn the_embedding_example_calls_serves_and_stops() {
    // A whole `cargo test` has built the examples next to the binaries it
    // tests; a run of this test alone builds it here (a no-op when current).
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_ferrocorn")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--ignore-rust-version", "--example", "embed"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let built = build.output().expect("run cargo build --example embed");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let example = profile_dir.join("examples/embed");
    assert!(example.exists(), "{} was not built", example.display());
    let output = Command::new(&example).output().expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        r#"in-process: 200 {"name": "spoon", "stock": 12, "host": "embed example"}"#
    );
    assert!(
        lines[1].starts_with("serving on http://127.0.0.1:"),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        r#"over HTTP: HTTP/1.1 200 OK {"name": "fork", "stock": 0, "host": "embed example"}"#
    );
    assert_eq!(lines[3], "stopped");
}
