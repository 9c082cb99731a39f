//! `ferrocorn run`: the embedded interpreter as a command, with Python's own
//! meaning for `-c CODE`, `-m MODULE`, `SCRIPT` and `-` (and a prompt when
//! stdin is a terminal and nothing else is named): the app's tests, its
//! management commands and one-off scripts on a host without Python.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use rustpython_vm::builtins::PyBaseExceptionRef;
use rustpython_vm::{AsObject, VirtualMachine};

use super::sandbox_args::{SandboxArgs, VALUE_FLAGS, in_confined_child};
use crate::config::{Config, sources};
use crate::python::app::import_module;
use crate::python::interpreter::spawn_interpreter_thread;
use crate::python::interpreter::{InterpreterOptions, new_interpreter};
use crate::sandbox::interpreter::{AppSandbox, ModulePolicy};
use crate::sandbox::{self, Policy};

/// Exit status when the code could not be run at all (as Python's 1).
const EXIT_FAILURE: u8 = 1;

/// Run Python code with the interpreter inside ferrocorn, as `python` does.
#[derive(Debug, Parser)]
#[command(
    name = "ferrocorn run",
    version,
    max_term_width = 100,
    override_usage = "ferrocorn run [OPTIONS] (-c CODE | -m MODULE | SCRIPT | -) [ARGS]...",
    after_help = "What to run, as with python (everything after it goes to sys.argv):\n  -c CODE      run CODE (sys.argv[0] is '-c')\n  -m MODULE    run MODULE as __main__ (e.g. -m pytest, -m flask)\n  SCRIPT       run the file (its directory first on sys.path)\n  -            read the code from stdin\nWith none of them: a prompt if stdin is a terminal (the standard library's code.interact; the terminal's own erase and kill keys, no history), else the code on stdin.\nExit status as Python's: sys.exit(N), 1 on an uncaught exception, 130 (SIGINT) after Ctrl-C."
)]
struct RunArgs {
    /// Configuration file whose settings apply (raw_env, pythonpath, chdir,
    /// the sandbox's): a path or python:MODULE. Default: ./gunicorn.conf.py when it exists.
    #[arg(long = "config", value_name = "CONFIG")]
    config: Option<String>,

    /// Change to this directory first; it goes first on sys.path (for -c, -m and -).
    #[arg(long, value_name = "DIR")]
    chdir: Option<PathBuf>,

    /// Comma-separated directories, .zip or .whl files to add to sys.path.
    #[arg(long, value_name = "PATHS")]
    pythonpath: Option<String>,

    /// Set an environment variable, KEY=VALUE; repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    raw_env: Vec<String>,

    #[command(flatten)]
    sandbox: SandboxArgs,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Code(String),
    Module(String),
    Script(PathBuf),
    Stdin,
    Prompt,
}

/// The options before what to run, what to run, and the words after it.
type Split = (Vec<OsString>, Option<Target>, Vec<String>);

fn split(words: Vec<OsString>) -> Result<Split, String> {
    let mut options = Vec::new();
    let mut words = words.into_iter();
    let text = |word: OsString| {
        word.into_string()
            .map_err(|w| format!("not UTF-8: {}", w.to_string_lossy()))
    };
    let takes_value = |word: &str| {
        VALUE_FLAGS.contains(&word)
            || ["--config", "--chdir", "--pythonpath", "-e", "--env"].contains(&word)
    };
    while let Some(word) = words.next() {
        let target = match word.to_str() {
            Some("-c") => Target::Code(text(words.next().ok_or("-c needs CODE")?)?),
            Some("-m") => Target::Module(text(words.next().ok_or("-m needs MODULE")?)?),
            Some("-") => Target::Stdin,
            Some("--") => match words.next() {
                Some(script) => Target::Script(PathBuf::from(script)),
                None => break,
            },
            Some(flag) if flag.starts_with('-') => {
                if takes_value(flag) {
                    options.push(word);
                    options.extend(words.next());
                } else {
                    options.push(word);
                }
                continue;
            }
            _ => Target::Script(PathBuf::from(word)),
        };
        let rest = words.map(text).collect::<Result<Vec<_>, _>>()?;
        return Ok((options, Some(target), rest));
    }
    Ok((options, None, Vec::new()))
}

/// Runs `ferrocorn run` with the words after `run`, over `defaults` (a
/// bundle's settings, the lowest layer; empty otherwise).
pub fn run(words: Vec<OsString>, defaults: Vec<OsString>) -> ExitCode {
    let (options, target, rest) = match split(words) {
        Ok(split) => split,
        Err(message) => return fail(&message),
    };
    let words = std::iter::once(OsString::from("ferrocorn run")).chain(options.iter().cloned());
    if let Err(error) = RunArgs::try_parse_from(words) {
        let _ = error.print();
        let code = if error.use_stderr() { EXIT_FAILURE } else { 0 };
        return ExitCode::from(code);
    }
    let target = target.unwrap_or_else(|| match std::io::stdin().is_terminal() {
        true => Target::Prompt,
        false => Target::Stdin,
    });
    match prepare(options, defaults) {
        Ok(config) if config.sandbox => {
            let code = in_confined_child(|tmp| run_confined(&config, tmp, &target, &rest));
            code.map_or_else(|message| fail(&message), ExitCode::from)
        }
        Ok(config) => match sys_path(&config, &target) {
            Ok(path) => ExitCode::from(execute(&config, path, None, &target, &rest)),
            Err(message) => fail(&message),
        },
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    crate::log::to_stderr(&format!("ferrocorn run: error: {message}"));
    ExitCode::from(EXIT_FAILURE)
}

/// The settings (run's flags are the server's flags of the same names, so
/// they layer over the configuration file and `GUNICORN_CMD_ARGS` as the
/// server's do), then the environment and the working directory they give.
fn prepare(options: Vec<OsString>, defaults: Vec<OsString>) -> Result<Config, String> {
    let mut words = options;
    // APP_MODULE is the server's and means nothing here.
    words.extend(["--".into(), "ferrocorn-run".into()]);
    let config = sources::load(words, defaults).map_err(|e| e.to_string())?;
    sandbox::check_settings(&config).map_err(|error| error.to_string())?;
    for pair in &config.raw_env {
        if let Some((key, value)) = pair.split_once('=') {
            // SAFETY: single-threaded: no interpreter or other thread exists
            // yet (the configuration file's interpreter thread has ended).
            unsafe { std::env::set_var(key, value) };
        }
    }
    if let Some(dir) = &config.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| format!("cannot change directory to {}: {e}", dir.display()))?;
    }
    Ok(config)
}

/// In the forked child: confine, then run.
fn run_confined(config: &Config, tmp: &Path, target: &Target, rest: &[String]) -> u8 {
    let sys_path = match sys_path(config, target) {
        Ok(path) => path,
        Err(message) => {
            crate::log::to_stderr(&format!("ferrocorn run: error: {message}"));
            return EXIT_FAILURE;
        }
    };
    let policy = Policy::new(config, &sys_path, tmp);
    let sandbox = AppSandbox::new(config, &policy);
    // SAFETY: the child just forked has this one thread.
    if let Err(error) = unsafe { policy.confine_process() } {
        crate::log::to_stderr(&format!("ferrocorn run: error: {error}"));
        return EXIT_FAILURE;
    }
    execute(config, sys_path, Some(sandbox), target, rest)
}

/// `sys.path`: the script's directory (for a script) or the working
/// directory first, then `--pythonpath`, then `$PYTHONPATH`.
fn sys_path(config: &Config, target: &Target) -> Result<Vec<String>, String> {
    let working_dir =
        std::env::current_dir().map_err(|e| format!("cannot find the working directory: {e}"))?;
    let mut path = config.sys_path(&working_dir);
    if let Target::Script(script) = target {
        let script =
            std::path::absolute(script).map_err(|e| format!("{}: {e}", script.display()))?;
        if let (Some(dir), Some(first)) = (script.parent(), path.first_mut()) {
            *first = dir.display().to_string();
        }
    }
    Ok(path)
}

/// `sys.argv` as Python sets it (`-m` replaces its first item with the
/// module's file once found).
fn argv(target: &Target, rest: &[String]) -> Vec<String> {
    let first = match target {
        Target::Code(_) => "-c".to_owned(),
        Target::Module(_) => "-m".to_owned(),
        Target::Script(path) => path.display().to_string(),
        Target::Stdin => "-".to_owned(),
        Target::Prompt => String::new(),
    };
    std::iter::once(first).chain(rest.iter().cloned()).collect()
}

/// Runs `target` in a new interpreter on a thread with the interpreter stack;
/// returns the exit status Python would.
fn execute(
    config: &Config,
    sys_path: Vec<String>,
    sandbox: Option<AppSandbox>,
    target: &Target,
    rest: &[String],
) -> u8 {
    let modules = ModulePolicy::from_config(config);
    let (target, argv) = (target.clone(), argv(target, rest));
    let thread = spawn_interpreter_thread("interpreter-0".to_owned(), move || {
        let options = InterpreterOptions {
            removed_modules: modules.removed_names(),
            python_signals: true,
            argv: Some(argv),
            ..Default::default()
        };
        let interpreter = new_interpreter(&sys_path, options);
        let mut limit = None;
        let code = interpreter.run(|vm| {
            let ran = prepare_interpreter(vm, &modules, sandbox.as_ref())
                .and_then(|()| run_target(vm, &target));
            if let Err(exception) = &ran {
                limit = runtime_limit(vm, exception);
            }
            ran
        });
        (code, limit)
    });
    if thread.is_ok() {
        leave_signals_to_the_interpreter_thread();
    }
    match thread.map(|t| t.join()) {
        Ok(Ok((code, limit))) => {
            if let Some(line) = limit {
                crate::log::to_stderr(&format!("ferrocorn run: error: {line}"));
            }
            code.min(255) as u8
        }
        _ => {
            crate::log::to_stderr("ferrocorn run: error: the interpreter thread could not run");
            EXIT_FAILURE
        }
    }
}

/// Blocks every signal on the calling (waiting) thread, so that the kernel
/// delivers a process-directed signal such as the terminal's SIGINT to the
/// interpreter thread (spawned before, with the mask unblocked): only there
/// does it interrupt a blocking call (`time.sleep`, a read of stdin) with
/// EINTR, after which Python runs its handler (PEP 475). Delivered to the
/// waiting thread, it only set a flag the interpreter saw when the call ended.
fn leave_signals_to_the_interpreter_thread() {
    // SAFETY: sigfillset initialises the set; pthread_sigmask changes only
    // this thread's mask and reads the set we own.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

fn prepare_interpreter(
    vm: &VirtualMachine,
    modules: &ModulePolicy,
    sandbox: Option<&AppSandbox>,
) -> Result<(), PyBaseExceptionRef> {
    modules
        .verify(vm)
        .map_err(|error| vm.new_runtime_error(error.to_string()))?;
    if let Some(sandbox) = sandbox {
        sandbox.install(vm)?;
    }
    modules.install_guard(vm)
}

fn run_target(vm: &VirtualMachine, target: &Target) -> Result<(), PyBaseExceptionRef> {
    match target {
        Target::Code(code) => vm
            .run_string(vm.new_scope_with_main()?, code, "<string>")
            .map(drop),
        Target::Module(module) => {
            // runpy runs the module in the __main__ module's namespace.
            vm.new_scope_with_main()?;
            vm.run_module(module)
        }
        Target::Script(path) => {
            let path = path.display().to_string();
            if !Path::new(&path).is_file() {
                return Err(vm.new_os_error(format!("can't open file {path:?}: no such file")));
            }
            vm.run_script(vm.new_scope_with_main()?, &path)
        }
        Target::Stdin => {
            let mut source = String::new();
            vm.allow_threads(|| std::io::stdin().read_to_string(&mut source))
                .map_err(|e| vm.new_os_error(format!("cannot read stdin: {e}")))?;
            vm.run_string(vm.new_scope_with_main()?, &source, "<stdin>")
                .map(drop)
        }
        Target::Prompt => {
            let run = import_module(vm, "ferrocorn.run", "interact")?;
            run.get_attr("interact", vm)?.call((), vm).map(drop)
        }
    }
}

/// The one line for an ImportError caused by RustPython's limits.
fn runtime_limit(vm: &VirtualMachine, exception: &PyBaseExceptionRef) -> Option<String> {
    let explain = import_module(vm, "ferrocorn.run", "explain")
        .and_then(|module| module.get_attr("explain", vm))
        .ok()?;
    let line = explain.call((exception.as_object().to_owned(),), vm).ok()?;
    if vm.is_none(&line) {
        return None;
    }
    line.str(vm).ok().map(|s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_stop_where_python_would() {
        let (options, target, rest) = split(words(&[
            "--chdir",
            "d",
            "--sandbox",
            "-m",
            "pytest",
            "-q",
            "--chdir",
            "x",
        ]))
        .unwrap();
        assert_eq!(options, words(&["--chdir", "d", "--sandbox"]));
        assert_eq!(target, Some(Target::Module("pytest".into())));
        assert_eq!(rest, ["-q", "--chdir", "x"]);
        let (_, target, rest) = split(words(&["-c", "print(1)", "a"])).unwrap();
        assert_eq!(
            (target, rest),
            (Some(Target::Code("print(1)".into())), vec!["a".to_owned()])
        );
        let (options, target, rest) = split(words(&["-e", "A=1", "manage.py", "migrate"])).unwrap();
        assert_eq!(options, words(&["-e", "A=1"]));
        assert_eq!(target, Some(Target::Script("manage.py".into())));
        assert_eq!(rest, ["migrate"]);
        assert_eq!(split(words(&["-"])).unwrap().1, Some(Target::Stdin));
        assert_eq!(split(words(&["--sandbox"])).unwrap().1, None);
        assert!(split(words(&["-c"])).is_err());
    }

    #[test]
    fn argv_is_set_as_python_sets_it() {
        let rest = ["a".to_owned()];
        assert_eq!(argv(&Target::Code("x".into()), &rest), ["-c", "a"]);
        assert_eq!(argv(&Target::Script("s.py".into()), &rest), ["s.py", "a"]);
        assert_eq!(argv(&Target::Stdin, &rest), ["-", "a"]);
    }
}
