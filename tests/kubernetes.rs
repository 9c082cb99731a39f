//! examples/deploy/kubernetes: the image its Containerfile describes is built
//! with podman (FROM scratch: one bundle), and its root file system is run as
//! the Deployment runs the container: read-only, as user 65534, an emptyDir
//! on /tmp, the args and environment of deployment.yaml, probed on the
//! paths and port its probes name. podman here cannot run containers (crun
//! cannot set rlimits in this environment), so the root is run with chroot,
//! as a runtime would set it up.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, TIMEOUT, scratch_dir, wait_until};

fn recipe(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/deploy/kubernetes")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_ok(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// podman, installed from Debian's packages if this machine lacks it.
fn ensure_podman() {
    if Command::new("podman").arg("--version").output().is_ok() {
        return;
    }
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-qq", "podman"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    assert!(installed, "this test needs podman: apt-get install podman");
}

/// podman with its storage in `dir`: nothing is left in the machine's.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn run(&self, args: &[&str]) -> Output {
        let root = self.dir.join("storage").display().to_string();
        let runroot = self.dir.join("run").display().to_string();
        let mut all = vec![
            "--root",
            &root,
            "--runroot",
            &runroot,
            "--storage-driver",
            "vfs",
        ];
        all.extend_from_slice(args);
        run_ok("podman", &all)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["--root", &self.dir.join("storage").display().to_string()])
            .args(["--runroot", &self.dir.join("run").display().to_string()])
            .args(["--storage-driver", "vfs", "system", "reset", "--force"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The root file system of the image, set up as a container runtime does
/// for this Deployment: read-only, with /proc, a /dev with the usual nodes
/// and the emptyDir on /tmp (writable by the pod's user).
struct ContainerRoot {
    dir: PathBuf,
}

impl ContainerRoot {
    fn new(dir: PathBuf, image_tar: &Path) -> ContainerRoot {
        std::fs::create_dir_all(&dir).unwrap();
        run_ok(
            "tar",
            &[
                "-xf",
                image_tar.to_str().unwrap(),
                "-C",
                dir.to_str().unwrap(),
            ],
        );
        // Mount points the runtime makes (the image has none of them).
        for sub in ["dev", "proc", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let root = ContainerRoot { dir };
        let path = |sub: &str| root.dir.join(sub).display().to_string();
        run_ok("mount", &["--bind", &path(""), &path("")]);
        run_ok("mount", &["-o", "remount,bind,ro", &path("")]);
        run_ok(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                "mode=1777,size=128m",
                "tmpfs",
                &path("tmp"),
            ],
        );
        run_ok(
            "mount",
            &["-t", "tmpfs", "-o", "mode=755", "tmpfs", &path("dev")],
        );
        for (node, minor) in [
            ("null", "3"),
            ("zero", "5"),
            ("full", "7"),
            ("random", "8"),
            ("urandom", "9"),
        ] {
            run_ok(
                "mknod",
                &["-m", "666", &path(&format!("dev/{node}")), "c", "1", minor],
            );
        }
        run_ok("mount", &["-t", "proc", "proc", &path("proc")]);
        root
    }

    /// `env -i ENV chroot --userspec USER ROOT ENTRYPOINT ARGS`.
    fn command(
        &self,
        user: &str,
        env: &[(String, String)],
        entrypoint: &str,
        args: &[String],
    ) -> Command {
        let mut command = Command::new("/usr/sbin/chroot");
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg(format!("--userspec={user}"))
            .arg(&self.dir)
            .arg(entrypoint)
            .args(args)
            .stdin(Stdio::null());
        command
    }
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct StopOnDrop(Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first `key: value` line after the line `block:` (both trimmed).
fn value_in(yaml: &str, block: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    yaml.lines()
        .skip_while(|l| l.trim() != format!("{block}:"))
        .find_map(|l| l.trim().strip_prefix(&prefix).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {key} under {block} in deployment.yaml"))
}

fn number_in(yaml: &str, block: &str, key: &str) -> u64 {
    value_in(yaml, block, key).parse().expect("a number")
}

/// The value that follows `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    &args[at + 1]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_recipe_describes_probes_on_the_metrics_port_a_long_enough_grace_and_a_locked_down_pod() {
    let yaml = recipe("deployment.yaml");
    let args: Vec<String> = serde_like_args(&yaml);
    assert_eq!(flag_value(&args, "--metrics-bind"), "0.0.0.0:9090");
    assert_eq!(flag_value(&args, "--bind"), "0.0.0.0:8000");
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/livez"),
    ] {
        assert_eq!(value_in(&yaml, probe, "path"), path, "{probe}");
        assert_eq!(value_in(&yaml, probe, "port"), "metrics", "{probe}");
    }
    assert!(yaml.contains("- name: metrics\n              containerPort: 9090"));
    assert!(yaml.contains("- name: http\n              containerPort: 8000"));
    let grace = number_in(&yaml, "spec", "terminationGracePeriodSeconds");
    let pre_stop = number_in(&yaml, "preStop", "seconds");
    let graceful: u64 = flag_value(&args, "--graceful-timeout").parse().unwrap();
    assert!(
        grace > pre_stop + graceful,
        "{grace} <= {pre_stop} + {graceful}"
    );
    assert_eq!(value_in(&yaml, "securityContext", "runAsNonRoot"), "true");
    assert_eq!(value_in(&yaml, "securityContext", "runAsUser"), "65534");
    assert_eq!(
        value_in(&yaml, "containers", "readOnlyRootFilesystem"),
        "true"
    );
    assert_eq!(value_in(&yaml, "volumeMounts", "mountPath"), "/tmp");
    let service = recipe("service.yaml");
    assert!(service.contains("targetPort: http") && service.contains("targetPort: metrics"));
}

/// deployment.yaml's `args:` line (a flow sequence, which is JSON).
fn serde_like_args(yaml: &str) -> Vec<String> {
    let line = value_in(yaml, "containers", "args");
    let inner = line
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .expect("args: [...]");
    inner
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_owned())
        .collect()
}

#[test]
fn the_image_built_from_the_recipe_serves_in_a_read_only_root_as_the_deployment_runs_it() {
    ensure_podman();
    let work = scratch_dir("kubernetes");
    let context = work.join("context");
    std::fs::create_dir_all(&context).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let bundled = Command::new(BIN)
        .current_dir(&examples)
        .args([
            "bundle",
            "-o",
            context.join("app").to_str().unwrap(),
            "hello",
        ])
        .output()
        .expect("ferrocorn bundle");
    assert!(
        bundled.status.success(),
        "{}",
        String::from_utf8_lossy(&bundled.stderr)
    );

    let podman = Podman {
        dir: work.join("podman"),
    };
    let containerfile = examples.join("deploy/kubernetes/Containerfile");
    podman.run(&[
        "build",
        "-q",
        "-t",
        "ferrocorn-recipe-test",
        "-f",
        containerfile.to_str().unwrap(),
        context.to_str().unwrap(),
    ]);
    let user = String::from_utf8(
        podman
            .run(&[
                "image",
                "inspect",
                "--format",
                "{{.Config.User}}",
                "ferrocorn-recipe-test",
            ])
            .stdout,
    )
    .unwrap();
    let entrypoint = String::from_utf8(
        podman
            .run(&[
                "image",
                "inspect",
                "--format",
                "{{json .Config.Entrypoint}}",
                "ferrocorn-recipe-test",
            ])
            .stdout,
    )
    .unwrap();
    assert_eq!(user.trim(), "65534:65534");
    assert_eq!(entrypoint.trim(), "[\"/app\"]");
    podman.run(&["create", "--name", "recipe", "ferrocorn-recipe-test"]);
    let tar = work.join("rootfs.tar");
    podman.run(&["export", "-o", tar.to_str().unwrap(), "recipe"]);
    let root = ContainerRoot::new(work.join("rootfs"), &tar);
    let image_files = || {
        let mut names: Vec<String> = std::fs::read_dir(&root.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        image_files(),
        ["app", "dev", "proc", "tmp"],
        "one file and the mount points"
    );

    // The Deployment's args and environment, with its wildcard binds moved
    // to free loopback ports (tests speak to 127.0.0.1 only).
    let yaml = recipe("deployment.yaml");
    let (http, metrics) = (free_port(), free_port());
    let args: Vec<String> = serde_like_args(&yaml)
        .into_iter()
        .map(|a| {
            a.replace("0.0.0.0:8000", &format!("127.0.0.1:{http}"))
                .replace("0.0.0.0:9090", &format!("127.0.0.1:{metrics}"))
        })
        .collect();
    let env = vec![(
        value_in(&yaml, "env", "- name"),
        value_in(&yaml, "env", "value"),
    )];
    assert_eq!(env[0].0, "FERROCORN_BUNDLE_DIR");
    let mut server = root.command(user.trim(), &env, "/app", &args);
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let server = StopOnDrop(server.spawn().expect("chroot"));

    let metrics_address = format!("127.0.0.1:{metrics}");
    let healthcheck = |extra: &[&str]| {
        let mut args = vec![
            "healthcheck".to_owned(),
            "--metrics-bind".to_owned(),
            metrics_address.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        root.command(user.trim(), &env, "/app", &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        wait_until(TIMEOUT, || healthcheck(&["--ready"])),
        "the startup probe never passed"
    );
    assert!(healthcheck(&[]), "not live");
    let reply = common::http_get_close(
        SocketAddr::from(([127, 0, 0, 1], http)),
        "hello.test",
        "/",
        Duration::from_secs(10),
    );
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        root.dir.join("tmp/bundle").is_dir(),
        "the bundle unpacked into FERROCORN_BUNDLE_DIR on the emptyDir"
    );

    // Kubernetes sends SIGTERM after preStop; the pod must be gone well
    // within terminationGracePeriodSeconds.
    // SAFETY: kill(2) on a process of ours.
    let pid = server.0.id() as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut server = server;
    let grace = Duration::from_secs(number_in(&yaml, "spec", "terminationGracePeriodSeconds"));
    let mut status = None;
    assert!(
        wait_until(grace, || {
            status = server.0.try_wait().unwrap();
            status.is_some()
        }),
        "still running past the grace period"
    );
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(
        image_files(),
        ["app", "dev", "proc", "tmp"],
        "nothing written outside the mounts"
    );
}
