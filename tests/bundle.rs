//! `ferrocorn bundle`: one executable with the app, its wheels and its
//! settings, run in a root that holds nothing else (a chroot with the device
//! nodes a container runtime gives a `FROM scratch` image), with an empty
//! environment.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{BIN, Client, Server, TIMEOUT, apps_dir, framework_pythonpath, scratch_dir};

const FLASK_APP: &str = r#"
import importlib.resources
import os
import pkgutil

from flask import Flask, render_template

import shop

app = Flask(__name__)


@app.route("/")
def index():
    return render_template("index.html", name="bundle")


@app.route("/data")
def data():
    packaged = importlib.resources.files("shop").joinpath("prices.txt").read_text()
    via_pkgutil = pkgutil.get_data("shop", "prices.txt").decode()
    return "%s|%s|%s" % (packaged.strip(), via_pkgutil.strip(), os.path.isfile(shop.__file__))
"#;

/// A Flask project: templates, static files, a package with data, and what
/// a bundle should leave out (tests, .git, caches, a log, a C extension).
fn flask_project(name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    let files: &[(&str, &str)] = &[
        ("app.py", FLASK_APP),
        (
            "gunicorn.conf.py",
            "proc_name = 'shopname'\nworkers = 3\nraw_env = ['SHOP_MODE=bundled']\n",
        ),
        (
            "templates/index.html",
            "<h1>Hello from the {{ name }}</h1>\n",
        ),
        ("static/site.css", "body { color: teal }\n"),
        ("shop/__init__.py", "PRICES = 'prices.txt'\n"),
        ("shop/prices.txt", "tea 3\n"),
        ("tests/test_app.py", "def test_nothing():\n    pass\n"),
        (".git/config", "[core]\n"),
        ("__pycache__/app.cpython-314.pyc", "stale"),
        ("debug.log", "noise\n"),
        (
            "shop/speedups.cpython-311-x86_64-linux-gnu.so",
            "not really an ELF",
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// Flask's wheels (and their fallbacks) among the pinned framework wheels.
fn flask_wheels() -> String {
    let wanted = [
        "flask-",
        "werkzeug-",
        "jinja2-",
        "itsdangerous-",
        "click-",
        "blinker-",
        "markupsafe-",
    ];
    let wheels: Vec<String> = framework_pythonpath()
        .split(',')
        .filter(|p| {
            let name = Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_lowercase();
            wanted.iter().any(|w| name.starts_with(w))
        })
        .map(str::to_owned)
        .collect();
    wheels.join(",")
}

fn bundle(project: &Path, output: &Path, extra: &[&str]) -> Output {
    let wheels = flask_wheels();
    let output = output.display().to_string();
    let mut args = vec!["bundle", "-o", &output, "--pythonpath", &wheels];
    args.extend_from_slice(extra);
    args.push("app:app");
    Command::new(BIN)
        .current_dir(project)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("ferrocorn bundle")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An empty root: the bundle, /tmp, the device nodes a container runtime
/// gives (all of them, or all but the random ones), and /proc mounted.
struct EmptyRoot {
    dir: PathBuf,
}

impl EmptyRoot {
    fn new(name: &str, bundle: &Path, random_devices: bool) -> EmptyRoot {
        let dir = scratch_dir(name);
        for sub in ["dev", "tmp", "proc"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
        }
        run_ok("chmod", &["1777", &dir.join("tmp").display().to_string()]);
        let mut devices = vec![("null", "3"), ("zero", "5"), ("full", "7")];
        if random_devices {
            devices.extend([("random", "8"), ("urandom", "9")]);
        }
        for (device, minor) in devices {
            let node = dir.join("dev").join(device).display().to_string();
            run_ok("mknod", &["-m", "666", &node, "c", "1", minor]);
        }
        std::fs::copy(bundle, dir.join("bundle")).unwrap();
        run_ok(
            "mount",
            &[
                "-t",
                "proc",
                "proc",
                &dir.join("proc").display().to_string(),
            ],
        );
        EmptyRoot { dir }
    }

    /// Takes /proc away, as a bare chroot or a minimal runtime leaves it.
    fn unmount_proc(&self) {
        run_ok("umount", &[&self.dir.join("proc").display().to_string()]);
        assert!(!self.dir.join("proc/self").exists());
    }

    /// `env -i chroot ROOT /bundle ARGS`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("/usr/sbin/chroot");
        command.env_clear().arg(&self.dir).arg("/bundle").args(args);
        command
    }

    /// The bundle serving on a free loopback port, once a worker has booted.
    fn serve(&self) -> Server {
        let mut command = self.command(&["-b", "127.0.0.1:0"]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Server::spawn(command)
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("chroot")
    }
}

impl Drop for EmptyRoot {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.join("proc")).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_ok(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().expect(program);
    assert!(status.success(), "{program} {args:?}");
}

fn get(addr: SocketAddr, path: &str) -> common::Response {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut client = Client::new(stream);
    client.send(
        format!("GET {path} HTTP/1.1\r\nHost: bundle\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    client.response(false).expect("a response")
}

#[test]
fn a_bundled_flask_app_serves_every_route_from_an_empty_root_with_an_empty_environment() {
    let project = flask_project("bundle-flask");
    let output = project.join("shop-server");
    // The project's configuration file comes along; the flags given with it
    // rank above it, as on the command line.
    let made = bundle(
        &project,
        &output,
        &[
            "-c",
            "gunicorn.conf.py",
            "-w",
            "2",
            "--exclude",
            "*.log",
            "--exclude",
            "tests",
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let report = stderr(&made);
    assert!(
        report
            .contains("left out app/shop/speedups.cpython-311-x86_64-linux-gnu.so: a C extension"),
        "{report}"
    );

    let root = EmptyRoot::new("bundle-root", &output, true);
    let server = root.serve();
    assert!(
        common::wait_until(TIMEOUT, || server.log().matches("Booted worker").count()
            == 2),
        "{}",
        server.log()
    );
    let index = get(server.addr(), "/");
    assert_eq!(index.status, 200, "{}", index.text());
    assert!(
        index.text().contains("<h1>Hello from the bundle</h1>"),
        "{}",
        index.text()
    );
    let css = get(server.addr(), "/static/site.css");
    assert_eq!(css.text(), "body { color: teal }\n");
    assert_eq!(get(server.addr(), "/data").text(), "tea 3|tea 3|True");
    drop(server);

    // Baked-in settings are defaults: shown by --print-config, overridden by
    // flags; the bundled configuration file ranks below the baked flags.
    let setting = |args: &[&str], name: &str| {
        let printed = root.output(args);
        let text = String::from_utf8_lossy(&printed.stdout).into_owned();
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.first() == Some(&name) && words.get(1) == Some(&"="))
            .map(|words| words[2..].join(" "))
            .unwrap_or_else(|| panic!("no {name} in {text}{}", stderr(&printed)))
    };
    assert_eq!(setting(&["--print-config"], "workers"), "2");
    assert_eq!(setting(&["--print-config"], "proc_name"), "shopname");
    assert_eq!(setting(&["--print-config", "-w", "4"], "workers"), "4");
    // run: the bundled app importable, the bundled configuration applied.
    let ran = root.output(&[
        "run",
        "-c",
        "import os, app; print(app.app.name, os.environ['SHOP_MODE'])",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "app bundled\n",
        "{}",
        stderr(&ran)
    );
    let checked = root.output(&["--check-config"]);
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let called = root.output(&["call", "/"]);
    assert!(
        String::from_utf8_lossy(&called.stdout).contains("Hello from the bundle"),
        "{}",
        stderr(&called)
    );
    // Under --sandbox the bundle's own files are readable with no --allow-read.
    let confined = root.output(&["call", "/data", "--sandbox"]);
    assert_eq!(
        String::from_utf8_lossy(&confined.stdout),
        "tea 3|tea 3|True",
        "{}",
        stderr(&confined)
    );

    // What it holds: the app and its data, not what was left out.
    let listing = root.output(&["bundle", "--list"]);
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        listing.starts_with(
            "settings: --config=@bundle/.ferrocorn-bundle/gunicorn.conf.py -w 2 app:app\n"
        ),
        "{listing}"
    );
    for held in [
        "app/app.py",
        "app/templates/index.html",
        "app/static/site.css",
        "app/shop/prices.txt",
        "lib/0/",
    ] {
        assert!(listing.contains(held), "{held} not in {listing}");
    }
    for left_out in [
        "app/tests/",
        ".git",
        "debug.log",
        "app/shop/speedups",
        "shop-server",
    ] {
        assert!(!listing.contains(left_out), "{left_out} in {listing}");
    }
    // Modules come compiled (the project's stale pyc left out, ours in).
    let pyc_size = |suffix: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(suffix))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
    };
    let app_pyc = pyc_size(" app/__pycache__/app.cpython-314.pyc");
    assert!(app_pyc.is_some_and(|size| size > 100), "{listing}");
    assert!(
        pyc_size("/flask/__pycache__/app.cpython-314.pyc").is_some(),
        "{listing}"
    );
}

/// `ferrocorn call /data` in the root reads the package's data both ways.
fn assert_package_data_is_served(root: &EmptyRoot) {
    let called = root.output(&["call", "/data"]);
    assert_eq!(
        String::from_utf8_lossy(&called.stdout),
        "tea 3|tea 3|True",
        "{}",
        stderr(&called)
    );
}

#[test]
fn without_random_devices_the_bundle_still_starts() {
    let project = flask_project("bundle-norandom");
    let output = project.join("server");
    assert!(bundle(&project, &output, &[]).status.success());
    let root = EmptyRoot::new("bundle-norandom-root", &output, false);
    assert!(!root.dir.join("dev/urandom").exists());
    assert_package_data_is_served(&root);
}

#[test]
fn without_proc_the_bundle_finds_its_payload_and_serves() {
    let project = flask_project("bundle-noproc");
    let output = project.join("server");
    assert!(bundle(&project, &output, &[]).status.success());
    let root = EmptyRoot::new("bundle-noproc-root", &output, true);
    root.unmount_proc();
    assert_package_data_is_served(&root);
    // Server::spawn returns once a worker has booted.
    let server = root.serve();
    let index = get(server.addr(), "/");
    assert_eq!(index.status, 200, "{}", index.text());
    assert!(index.text().contains("<h1>Hello from the bundle</h1>"));
}

#[test]
fn the_same_inputs_give_the_same_bytes_and_a_damaged_payload_is_named_in_one_line() {
    let project = flask_project("bundle-repro");
    // Written outside the project, so neither bundle holds the other.
    let (first, second) = (
        scratch_dir("bundle-repro-a").join("bundle"),
        scratch_dir("bundle-repro-b").join("bundle"),
    );
    assert!(bundle(&project, &first, &[]).status.success());
    assert!(bundle(&project, &second, &[]).status.success());
    let (a, b) = (
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
    );
    assert!(
        a == b,
        "two bundles of the same inputs differ ({} and {} bytes)",
        a.len(),
        b.len()
    );

    let damaged_dir = scratch_dir("bundle-damaged");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            a[..a.len() - 1000].to_vec(),
            "its payload is gone",
        ),
        (
            "flipped",
            {
                let mut bytes = a.clone();
                let middle = bytes.len() - 200_000;
                bytes[middle] ^= 0xff;
                bytes
            },
            "does not match its checksum",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = damaged_dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        run_ok("chmod", &["755", &path.display().to_string()]);
        let output = Command::new(&path).args(["call", "/"]).output().unwrap();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{name}: {text}");
        assert_eq!(text.lines().count(), 1, "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
    }
    // strip(1) drops what follows the ELF sections: the payload.
    let stripped = damaged_dir.join("stripped");
    std::fs::copy(&first, &stripped).unwrap();
    run_ok("strip", &[&stripped.display().to_string()]);
    let output = Command::new(&stripped).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("its payload is gone (removed by strip"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_app_that_needs_a_c_extension_is_refused_when_bundling() {
    let out = scratch_dir("bundle-cext").join("never");
    let output = Command::new(BIN)
        .current_dir(apps_dir())
        .args([
            "bundle",
            "-o",
            &out.display().to_string(),
            "uses_cext:application",
        ])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the app does not load, so it is not bundled"),
        "{text}"
    );
    assert!(
        text.contains("fast.cpython-311-x86_64-linux-gnu.so"),
        "{text}"
    );
    assert!(!out.exists());
}

const DJANGO_SITE: &str = r#"
import os

from django.conf import settings

BASE = os.path.dirname(os.path.abspath(__file__))
settings.configure(
    DEBUG=False,
    SECRET_KEY="bundle-test-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.admin"],
    TEMPLATES=[{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.path.join(BASE, "templates")],
        "APP_DIRS": True,
    }],
    USE_I18N=False,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.urls import path  # noqa: E402


def page(request):
    # One template from the project's directory, one from Django's wheel.
    own = render_to_string("page.html", {"name": "bundle"})
    packaged = render_to_string("registration/password_reset_subject.txt", {"site_name": "shop"})
    return HttpResponse(own + "|" + packaged.strip())


urlpatterns = [path("", page)]
application = get_wsgi_application()
"#;

#[test]
fn a_bundled_django_app_renders_its_own_templates_and_those_in_djangos_wheel() {
    let project = scratch_dir("bundle-django");
    std::fs::write(project.join("shopsite.py"), DJANGO_SITE).unwrap();
    std::fs::create_dir(project.join("templates")).unwrap();
    std::fs::write(project.join("templates/page.html"), "<p>{{ name }}</p>").unwrap();
    let wheels: Vec<String> = framework_pythonpath()
        .split(',')
        .filter(|p| {
            ["Django-", "asgiref-", "sqlparse-"]
                .iter()
                .any(|w| p.contains(w))
        })
        .map(str::to_owned)
        .collect();
    let output = scratch_dir("bundle-django-out").join("site");
    let made = Command::new(BIN)
        .current_dir(&project)
        .args(["bundle", "-o", &output.display().to_string()])
        .args(["--pythonpath", &wheels.join(","), "shopsite:application"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let root = EmptyRoot::new("bundle-django-root", &output, true);
    let called = root.output(&["call", "/"]);
    assert_eq!(
        String::from_utf8_lossy(&called.stdout),
        "<p>bundle</p>|Password reset on shop",
        "{}",
        stderr(&called)
    );
}

#[test]
fn with_nothing_writable_the_bundle_says_so_and_a_volume_named_by_ferrocorn_bundle_dir_serves() {
    let project = flask_project("bundle-readonly");
    let output = project.join("server");
    assert!(bundle(&project, &output, &[]).status.success());
    let root = EmptyRoot::new("bundle-readonly-root", &output, true);
    // readOnlyRootFilesystem: /tmp too is read-only here.
    let tmp = root.dir.join("tmp").display().to_string();
    run_ok("mount", &["-t", "tmpfs", "-o", "ro", "tmpfs", &tmp]);
    let refused = root.output(&["call", "/data"]);
    let _ = Command::new("umount").arg(&tmp).status();
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("no writable directory of its own") && text.contains("FERROCORN_BUNDLE_DIR"),
        "{text}"
    );

    std::fs::create_dir(root.dir.join("volume")).unwrap();
    let mut command = root.command(&["call", "/data"]);
    let served = command
        .env("FERROCORN_BUNDLE_DIR", "/volume/bundles")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&served.stdout),
        "tea 3|tea 3|True",
        "{}",
        stderr(&served)
    );
    assert!(root.dir.join("volume/bundles").is_dir());
}
