//! Settings from Gunicorn's sources: a configuration file executed by the
//! embedded interpreter (`-c`, `python:module`, `./gunicorn.conf.py`),
//! `GUNICORN_CMD_ARGS`, `WEB_CONCURRENCY` and the command line, in Gunicorn's
//! precedence; `--print-config`, `--check-config`; refused settings.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, Server, apps_dir, scratch_dir};

fn ferrocorn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.current_dir(dir).args(args).stdin(Stdio::null());
    command
        .env_remove("WEB_CONCURRENCY")
        .env_remove("GUNICORN_CMD_ARGS");
    for (key, value) in env {
        command.env(key, value);
    }
    common::output_within_timeout(command)
}

/// `--print-config`'s value for Gunicorn setting `name`.
fn printed(output: &Output, name: &str) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(" = ")?;
            (key.trim() == name).then(|| value.to_owned())
        })
        .unwrap_or_else(|| panic!("{name} not printed:\n{text}"))
}

/// A directory holding the probe app and `files`.
fn project(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = scratch_dir(name);
    std::fs::copy(apps_dir().join("probe.py"), dir.join("probe.py")).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn each_source_overrides_the_ones_before_it_as_in_gunicorn() {
    let dir = project(
        "precedence",
        &[(
            "conf.py",
            "workers = 2\nthreads = 3\nkeepalive = 7\nbind = '127.0.0.1:7001'\n",
        )],
    );
    let print = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--print-config", "-c", "conf.py"];
        all.extend_from_slice(args);
        all.push("probe");
        ferrocorn(&dir, &all, env)
    };
    let file_only = print(&[], &[("WEB_CONCURRENCY", "5")]);
    assert_eq!(file_only.status.code(), Some(0), "{}", stderr(&file_only));
    // WEB_CONCURRENCY is only the default: the file's workers win.
    assert_eq!(printed(&file_only, "workers"), "2");
    assert_eq!(printed(&file_only, "threads"), "3");
    assert_eq!(printed(&file_only, "keepalive"), "7");
    assert_eq!(printed(&file_only, "bind"), "127.0.0.1:7001");

    let env_args = print(
        &[],
        &[("GUNICORN_CMD_ARGS", "--threads 4 --bind '127.0.0.1:7002'")],
    );
    assert_eq!(printed(&env_args, "threads"), "4");
    assert_eq!(printed(&env_args, "bind"), "127.0.0.1:7002");
    assert_eq!(printed(&env_args, "workers"), "2");

    let cli = print(
        &["--threads", "6", "-b", "127.0.0.1:7003"],
        &[("GUNICORN_CMD_ARGS", "--threads 4")],
    );
    assert_eq!(printed(&cli, "threads"), "6");
    assert_eq!(printed(&cli, "bind"), "127.0.0.1:7003");

    let no_file = ferrocorn(
        &dir,
        &["--print-config", "probe"],
        &[("WEB_CONCURRENCY", "5")],
    );
    assert_eq!(
        printed(&no_file, "workers"),
        "5",
        "WEB_CONCURRENCY is the default"
    );
}

#[test]
fn an_existing_projects_config_file_runs_unchanged() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = scratch_dir("project");
    std::fs::copy(apps_dir().join("probe.py"), dir.join("probe.py")).unwrap();
    let access_log = dir.join("access.log");
    let conf = format!(
        r#"import multiprocessing
import os

bind = "127.0.0.1:{port}"
workers = 2
threads = 2
wsgi_app = "probe:application"
accesslog = {access_log:?}
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s'
raw_env = ["GREETING=from the config file"]
max_requests = 1000
timeout = 60
"#
    );
    std::fs::write(dir.join("gunicorn.conf.py"), conf).unwrap();
    let mut command = Command::new(BIN);
    command
        .current_dir(&dir)
        .env_remove("GUNICORN_CMD_ARGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = Server::spawn(command);
    assert_eq!(server.addr().port(), port, "bound where the file said");
    let response = server.get("/os-environ?GREETING");
    assert_eq!(response.text(), "from the config file");
    common::wait_for_file(
        &access_log,
        &["127.0.0.1 \"GET /os-environ?GREETING HTTP/1.1\" 200 20"],
    );
    assert!(server.log().contains("2 workers"), "{}", server.log());
}

#[test]
fn a_python_module_can_be_the_config() {
    let dir = project(
        "module-config",
        &[("settings_mod.py", "threads = 5\nwsgi_app = 'probe'\n")],
    );
    let output = ferrocorn(&dir, &["--print-config", "-c", "python:settings_mod"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(printed(&output, "threads"), "5");
    assert_eq!(printed(&output, "wsgi_app"), "probe");
}

#[test]
fn unsupported_settings_are_refused_naming_them() {
    let dir = project(
        "unsupported",
        &[
            ("syslog.py", "syslog = True\n"),
            ("daemon.py", "daemon = True\n"),
        ],
    );
    for (args, env, named) in [
        (vec!["--log-syslog", "probe"], vec![], "syslog"),
        (vec!["-c", "syslog.py", "probe"], vec![], "syslog"),
        (vec!["-c", "daemon.py", "probe"], vec![], "daemon"),
        (
            vec!["probe"],
            vec![("GUNICORN_CMD_ARGS", "--worker-tmp-dir /dev/shm")],
            "worker_tmp_dir",
        ),
        (
            vec!["-k", "gevent", "probe"],
            vec![],
            "worker_class \"gevent\"",
        ),
    ] {
        let output = ferrocorn(&dir, &args, &env);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.starts_with("ferrocorn: error: "), "{text}");
        assert!(text.contains(named), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
    // A False/None unsupported setting asks for nothing and is accepted.
    std::fs::write(
        dir.join("off.py"),
        "daemon = False\nworker_tmp_dir = None\n",
    )
    .unwrap();
    let output = ferrocorn(&dir, &["--check-config", "-c", "off.py", "probe"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn gunicorns_statsd_settings_are_taken_from_a_configuration_file() {
    let dir = project(
        "statsd",
        &[(
            "conf.py",
            "statsd_host = 'localhost:8125'\nstatsd_prefix = 'shop'\ndogstatsd_tags = 'env:ci'\n",
        )],
    );
    let output = ferrocorn(&dir, &["--print-config", "-c", "conf.py", "probe"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(printed(&output, "statsd_host"), "localhost:8125");
    assert_eq!(printed(&output, "statsd_prefix"), "shop");
    assert_eq!(printed(&output, "dogstatsd_tags"), "env:ci");
}

#[test]
fn bad_values_name_their_source() {
    let dir = project(
        "bad-values",
        &[
            ("conf.py", "workers = 'many'\n"),
            ("broken.py", "raise ValueError('boom')\n"),
        ],
    );
    let output = ferrocorn(&dir, &["-c", "conf.py", "probe"], &[]);
    assert!(
        stderr(&output)
            .contains("in configuration file conf.py: invalid value 'many' for '--workers"),
        "{}",
        stderr(&output)
    );
    let output = ferrocorn(&dir, &["probe"], &[("GUNICORN_CMD_ARGS", "--threads x")]);
    assert!(
        stderr(&output).contains("in GUNICORN_CMD_ARGS: invalid value 'x'"),
        "{}",
        stderr(&output)
    );
    let output = ferrocorn(&dir, &["-c", "broken.py", "probe"], &[]);
    assert!(
        stderr(&output).contains("ValueError: boom"),
        "{}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(1));
    let output = ferrocorn(&dir, &["-c", "missing.py", "probe"], &[]);
    assert_eq!(
        stderr(&output).trim(),
        "ferrocorn: error: configuration file \"missing.py\" does not exist"
    );
}

#[test]
fn check_config_loads_the_app_and_reports_by_exit_status() {
    let dir = project("check", &[]);
    let good = ferrocorn(&dir, &["--check-config", "probe"], &[]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    let bad = ferrocorn(&dir, &["--check-config", "no_such_module"], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("no_such_module"), "{}", stderr(&bad));
    let no_app = ferrocorn(&dir, &["--check-config"], &[]);
    assert_eq!(no_app.status.code(), Some(1));
    assert!(
        stderr(&no_app).contains("no APP_MODULE"),
        "{}",
        stderr(&no_app)
    );
}

#[test]
fn config_file_values_take_gunicorn_shapes() {
    let dir = project(
        "shapes",
        &[(
            "conf.py",
            "umask = 0o027\nforwarded_allow_ips = ['10.0.0.1', '10.0.0.0/8']\n\
             secure_scheme_headers = {'X-Scheme': 'https'}\nbind = '127.0.0.1:7010'\n\
             raw_env = ['A=1', 'B=2']\nsendfile = False\n",
        )],
    );
    let output = ferrocorn(
        &dir,
        &["--print-config", "-c", "conf.py", "--no-sendfile", "probe"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        printed(&output, "umask"),
        "0o27",
        "the number 0o027, as the octal mask"
    );
    assert_eq!(
        printed(&output, "forwarded_allow_ips"),
        "10.0.0.1,10.0.0.0/8"
    );
    assert_eq!(printed(&output, "secure_scheme_headers"), "X-Scheme=https");
    assert_eq!(printed(&output, "raw_env"), "A=1,B=2");
}

#[test]
fn sandbox_settings_come_from_the_file_and_gunicorn_cmd_args_and_are_printed() {
    let dir = project("sandbox-settings", &[]);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let conf = format!(
        "sandbox = True\nallow_read = [{data:?}]\nallow_write = [{data:?}]\nallow_connect = ['5432', 'db.internal:6379']\nallow_subprocess = False\ndeny_module = ['pickle', 'xmlrpc']\nrequest_timeout = 2.5\nmax_worker_memory = 512\n",
        data = data.display().to_string()
    );
    std::fs::write(dir.join("conf.py"), conf).unwrap();
    let output = ferrocorn(
        &dir,
        &["--print-config", "-c", "conf.py", "probe"],
        &[(
            "GUNICORN_CMD_ARGS",
            "--allow-env A --allow-env B --allow-ffi",
        )],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(printed(&output, "sandbox"), "true");
    assert_eq!(printed(&output, "allow_read"), data.display().to_string());
    assert_eq!(printed(&output, "allow_connect"), "5432,db.internal:6379");
    assert_eq!(printed(&output, "allow_env"), "A,B");
    assert_eq!(printed(&output, "allow_ffi"), "true");
    assert_eq!(printed(&output, "deny_module"), "pickle,xmlrpc");
    assert_eq!(printed(&output, "request_timeout"), "2.5");
    assert_eq!(printed(&output, "max_worker_memory"), "512");

    let refused = ferrocorn(&dir, &["--allow-connect", "x:y", "probe"], &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("invalid --allow-connect \"x:y\""),
        "{}",
        stderr(&refused)
    );
    let hole = ferrocorn(&dir, &["--allow-write", "/", "probe"], &[]);
    assert_eq!(hole.status.code(), Some(1));
    let message = stderr(&hole);
    assert!(
        message.trim_end().ends_with("--allow-write opens a hole in the sandbox, but --sandbox is not on: add --sandbox (sandbox = True)"),
        "{message}"
    );
}
