//! `ferrocorn run`: Python code run as `python` runs it, with the embedded
//! interpreter: `-c`, `-m`, a script, stdin; `sys.argv`; exit statuses;
//! RustPython's limits in one line; Ctrl-C; `--sandbox`; and the real work
//! it is for: pytest suites, Django's manage.py, Flask's CLI.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, TIMEOUT, apps_dir, framework_pythonpath, scratch_dir};

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("run")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run ferrocorn run")
}

fn run(args: &[&str]) -> Output {
    run_in(&apps_dir(), args, &[])
}

/// `ferrocorn run --pythonpath <the pinned wheels> ARGS` in `dir`.
fn run_with_wheels(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let pythonpath = framework_pythonpath();
    let mut all = vec!["--pythonpath", &pythonpath];
    all.extend_from_slice(args);
    run_in(dir, &all, env)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn dash_c_runs_code_with_python_argv_and_the_working_directory_first() {
    let output = run(&[
        "-c",
        "import sys; print(sys.argv); print(sys.path[0])",
        "a",
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let dir = std::fs::canonicalize(apps_dir()).unwrap();
    assert_eq!(
        stdout(&output),
        format!("['-c', 'a', '-q']\n{}\n", dir.display())
    );
}

#[test]
fn a_script_runs_as_main_with_its_directory_first_on_sys_path() {
    let dir = scratch_dir("run-script");
    std::fs::write(dir.join("helper.py"), "VALUE = 'from the helper'\n").unwrap();
    std::fs::write(
        dir.join("script.py"),
        "import sys, helper\nprint(__name__, helper.VALUE, sys.argv[1:])\n",
    )
    .unwrap();
    let script = dir.join("script.py").display().to_string();
    let output = run(&[&script, "x", "--flag"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "__main__ from the helper ['x', '--flag']\n"
    );
}

#[test]
fn dash_m_runs_a_module_as_main_and_passes_its_arguments() {
    let dir = scratch_dir("run-module");
    std::fs::write(
        dir.join("tool.py"),
        "import sys\nif __name__ == '__main__':\n    print(sys.argv[0].endswith('tool.py'), sys.argv[1:])\n",
    )
    .unwrap();
    let output = run_in(&dir, &["-m", "tool", "-v", "--chdir", "y"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "True ['-v', '--chdir', 'y']\n");
}

#[test]
fn code_comes_from_stdin_with_a_dash_or_when_stdin_is_not_a_terminal() {
    for args in [&["-", "arg"][..], &[][..]] {
        let mut child = Command::new(BIN)
            .arg("run")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"import sys\nprint(6 * 7, sys.argv)\n")
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        let expected = if args.is_empty() {
            "42 ['-']\n"
        } else {
            "42 ['-', 'arg']\n"
        };
        assert_eq!(stdout(&output), expected);
    }
}

#[test]
fn exit_statuses_are_pythons() {
    assert_eq!(
        run(&["-c", "import sys; sys.exit(3)"]).status.code(),
        Some(3)
    );
    assert_eq!(
        run(&["-c", "import sys; sys.exit()"]).status.code(),
        Some(0)
    );
    let message = run(&["-c", "import sys; sys.exit('bye')"]);
    assert_eq!(message.status.code(), Some(1));
    assert_eq!(stderr(&message), "bye\n");
    let raised = run(&["-c", "def f():\n    raise ValueError('broken')\nf()"]);
    assert_eq!(raised.status.code(), Some(1));
    let text = stderr(&raised);
    assert!(
        text.starts_with("Traceback (most recent call last):")
            && text.ends_with("ValueError: broken\n"),
        "{text}"
    );
    let missing = run(&["no_such_script.py"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no_such_script.py"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn output_is_flushed_at_exit() {
    let output = run(&[
        "-c",
        "import sys\nprint('no newline', end='')\nsys.stderr.write('err')",
    ]);
    assert_eq!(stdout(&output), "no newline");
    assert_eq!(stderr(&output), "err");
    let output = run(&["-c", "print('x' * 100000, end='')"]);
    assert_eq!(stdout(&output).len(), 100000);
}

#[test]
fn a_missing_part_of_the_standard_library_is_named_in_one_line() {
    let output = run(&["-c", "import needs_tkinter"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.lines().last().unwrap_or("").starts_with(
            "ferrocorn run: error: the code needs module '_tkinter', a part of the standard library this ferrocorn build does not include"
        ),
        "{text}"
    );
}

#[test]
fn a_c_extension_without_fallback_is_named_in_one_line() {
    let output = run(&["-c", "import uses_cext"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    let last = text.lines().last().unwrap_or("");
    assert!(
        last.starts_with(
            "ferrocorn run: error: the code needs module 'cext_pkg.fast', a C extension"
        ),
        "{text}"
    );
}

#[test]
fn ctrl_c_raises_keyboard_interrupt_in_the_script_and_ends_it_as_python_does() {
    // The script is inside one long blocking call: SIGINT must interrupt it
    // (EINTR on the interpreter's thread), not wait for it to end.
    let mut child = Command::new(BIN)
        .args([
            "run",
            "-c",
            "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    print('interrupted', flush=True)\n    raise",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop on SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "interrupted\n", "the script saw KeyboardInterrupt");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGINT),
        "ended by SIGINT, as CPython does: {status}"
    );
}

#[test]
fn the_sandbox_applies_to_run() {
    let dir = scratch_dir("run-sandbox");
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    let code = format!("open({:?}).read()", secret.display().to_string());
    let confined = run(&["--sandbox", "-c", &code]);
    assert_eq!(confined.status.code(), Some(1));
    assert!(
        stderr(&confined).contains("PermissionError"),
        "{}",
        stderr(&confined)
    );
    let touched = dir.join("touched");
    let write = format!("open({:?}, 'w')", touched.display().to_string());
    assert_eq!(run(&["--sandbox", "-c", &write]).status.code(), Some(1));
    assert!(!touched.exists());
    let allowed = run(&[
        "--sandbox",
        "--allow-read",
        &dir.display().to_string(),
        "-c",
        &format!("print({code})"),
    ]);
    assert_eq!(
        stdout(&allowed),
        "the host's secret\n",
        "{}",
        stderr(&allowed)
    );
    let hole = run(&["--allow-ffi", "-c", "pass"]);
    assert_eq!(hole.status.code(), Some(1));
    assert!(
        stderr(&hole).starts_with("ferrocorn run: error: --allow-ffi"),
        "{}",
        stderr(&hole)
    );
}

#[test]
fn the_framework_examples_pytest_suites_pass() {
    let pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider"];
    let output = run_with_wheels(repo(), &[&pytest[..], &["examples/tests"]].concat(), &[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("12 passed"), "{text}");
}

#[test]
fn a_failing_test_gives_status_1_and_pytests_failure_report() {
    let pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider"];
    let output = run_with_wheels(
        &apps_dir(),
        &[&pytest[..], &["pytest_failing"]].concat(),
        &[],
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    assert!(text.contains("1 failed, 1 passed"), "{text}");
    assert!(
        text.contains("assert 2 == 3"),
        "assertion rewriting shows the values: {text}"
    );
}

#[test]
fn djangos_management_commands_run_against_sqlite() {
    let database = scratch_dir("run-django").join("db.sqlite3");
    let env = [("DJANGO_DATABASE", database.to_str().unwrap())];
    let manage =
        |command: &str| run_with_wheels(repo(), &["examples/django_app.py", command], &env);
    let check = manage("check");
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("System check identified no issues"),
        "{}",
        stdout(&check)
    );
    let migrate = manage("migrate");
    assert_eq!(
        migrate.status.code(),
        Some(0),
        "{}{}",
        stdout(&migrate),
        stderr(&migrate)
    );
    assert!(
        stdout(&migrate).contains("Applying auth.0001_initial... OK"),
        "{}",
        stdout(&migrate)
    );
    let query = format!(
        "import sqlite3; print(sorted(r[0] for r in sqlite3.connect({:?}).execute(\"select name from sqlite_master where type='table'\")))",
        database.display().to_string()
    );
    let tables = run_in(repo(), &["-c", &query], &[]);
    assert!(
        stdout(&tables).contains("'auth_user'"),
        "{}",
        stdout(&tables)
    );
}

#[test]
fn flasks_cli_lists_the_routes() {
    let routes = ["-m", "flask", "--app", "examples.flask_app", "routes"];
    let output = run_with_wheels(repo(), &routes, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for route in ["/hello/<name>", "/api/items/<int:item_id>", "/form"] {
        assert!(text.contains(route), "{route} missing: {text}");
    }
}

#[test]
fn settings_come_from_the_configuration_file_as_for_the_server() {
    let dir = scratch_dir("run-config");
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("lib/shared.py"), "NAME = 'from --pythonpath'\n").unwrap();
    std::fs::write(
        dir.join("gunicorn.conf.py"),
        "raw_env = ['GREETING=hello from raw_env']\npythonpath = 'lib'\n",
    )
    .unwrap();
    let code = "import os, shared; print(os.environ['GREETING'], shared.NAME)";
    let output = run_in(&dir, &["-c", code], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "hello from raw_env from --pythonpath\n");
    std::fs::write(
        dir.join("other.py"),
        "raw_env = ['GREETING=from other.py']\n",
    )
    .unwrap();
    let other = run_in(
        &dir,
        &[
            "--config",
            "other.py",
            "-c",
            "import os; print(os.environ['GREETING'])",
        ],
        &[],
    );
    assert_eq!(stdout(&other), "from other.py\n", "{}", stderr(&other));
    let flag = run_in(
        &dir,
        &[
            "-e",
            "GREETING=from -e",
            "-c",
            "import os; print(os.environ['GREETING'])",
        ],
        &[],
    );
    assert_eq!(stdout(&flag), "from -e\n", "the command line wins");
}

#[test]
fn a_terminal_on_stdin_and_nothing_to_run_gives_a_prompt_that_takes_a_pasted_block() {
    // script(1) (util-linux) runs the command on a pseudo-terminal, through
    // $SHELL -c: `exec`, or a shell that forks (dash) stays in the terminal's
    // foreground group, dies of the Ctrl-C, and script reports its 130.
    let mut child = Command::new("script")
        .args(["-qec", &format!("exec {BIN} run"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut terminal = child.stdin.take().unwrap();
    let screen = common::OutputWatcher::new(child.stdout.take().unwrap());
    // Typed ahead before the prompt is up, then pasted at the prompt: two
    // lines arriving in one read each time, and every line must run.
    terminal
        .write_all(b"x = 20 + 22\nprint('answer', x)\n")
        .unwrap();
    assert!(screen.wait_for("answer 42", TIMEOUT), "{}", screen.text());
    assert!(screen.text().contains(">>> "), "{}", screen.text());
    terminal
        .write_all(b"y = x + 1\nprint('next', y)\n")
        .unwrap();
    assert!(screen.wait_for("next 43", TIMEOUT), "{}", screen.text());
    // Ctrl-C at the prompt: KeyboardInterrupt at once, and the prompt goes on.
    terminal.write_all(b"\x03").unwrap();
    assert!(
        screen.wait_for("KeyboardInterrupt", TIMEOUT),
        "{}",
        screen.text()
    );
    terminal.write_all(b"print('still', y)\n").unwrap();
    assert!(screen.wait_for("still 43", TIMEOUT), "{}", screen.text());
    terminal.write_all(b"\x04").unwrap();
    drop(terminal);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", screen.text());
}
