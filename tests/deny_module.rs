//! `--deny-module` names what it cannot honour up front: a module that the
//! interpreter or ferrocorn's own loader imports before the app runs is
//! refused with one line, never a panic, a worker that cannot boot, or a
//! module left importable.

mod common;

use std::process::{Command, Output, Stdio};

use common::{BIN, apps_dir, output_within_timeout, run_to_exit};

fn call(args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("call")
        .args(args)
        .current_dir(apps_dir())
        .stdin(Stdio::null());
    output_within_timeout(command)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_server_refuses_a_module_the_interpreter_cannot_start_without() {
    // Before: every worker died in RustPython's start-up with a panic
    // ("essential initialization failed") and the arbiter gave up.
    let (status, log) = run_to_exit(
        &apps_dir(),
        &["--deny-module", "_thread", "imports:application"],
    );
    assert!(!status.success(), "{log}");
    let line = "ferrocorn: error: --deny-module _thread: ferrocorn cannot deny it";
    assert!(log.contains(line), "{log}");
    assert!(!log.contains("panic"), "{log}");
    assert!(
        !log.contains("Booting worker"),
        "refused before any worker: {log}"
    );
}

#[derive(Debug, PartialEq)]
enum Outcome {
    RefusedUpFront,
    KeptFromTheApp,
}

/// Denying `name` under `mode`: refused up front with one line naming it,
/// or honoured (the app's import of it fails naming the policy). Anything
/// else (a load failure, a panic, the module still importable) is the bug.
fn deny(mode: &[&str], name: &str) -> Outcome {
    let path = format!("/{name}");
    let mut args = mode.to_vec();
    args.extend(["--deny-module", name, "imports:application", &path]);
    let output = call(&args);
    let (out, err) = (text(&output.stdout), text(&output.stderr));
    let refused = format!("ferrocorn call: error: --deny-module {name}: ferrocorn cannot deny it");
    if err.starts_with(&refused) {
        assert_eq!(output.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        return Outcome::RefusedUpFront;
    }
    assert_eq!(
        output.status.code(),
        Some(0),
        "{mode:?} --deny-module {name}: {out}{err}"
    );
    assert!(
        out.starts_with("refused: ") && out.contains("--deny-module"),
        "{mode:?} --deny-module {name} left it importable: {out}{err}"
    );
    Outcome::KeptFromTheApp
}

#[test]
fn every_module_imported_before_the_app_is_refused_up_front_or_kept_from_it() {
    for mode in [&[][..], &["--sandbox"][..]] {
        let mut args = mode.to_vec();
        args.extend(["imports:application", "/"]);
        let listing = call(&args);
        assert!(listing.status.success(), "{}", text(&listing.stderr));
        let before = text(&listing.stdout);
        let names: Vec<&str> = before.lines().collect();
        assert!(
            names.contains(&"sys") && names.contains(&"ferrocorn.loader"),
            "{before}"
        );
        for name in names {
            deny(mode, name);
        }
    }
    assert_eq!(deny(&[], "os"), Outcome::RefusedUpFront);
    // A module nothing imported first is kept from the app as before.
    assert_eq!(deny(&[], "pickle"), Outcome::KeptFromTheApp);
    assert_eq!(deny(&["--sandbox"], "socket"), Outcome::KeptFromTheApp);
}
