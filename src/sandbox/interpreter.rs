//! The interpreter's share of the policy. Modules the operator denies
//! (`--deny-module`, and ctypes under `--sandbox` without `--allow-ffi`) are
//! removed from the interpreter itself (see [`InterpreterOptions`]), then an
//! import guard names the policy in the ImportError; under `--sandbox`,
//! `ferrocorn.sandbox` gives the kernel's refusals messages that name the
//! flag to change and checks what the kernel cannot (the host part of
//! `--allow-connect`, name lookups). The kernel stays the boundary.
//!
//! [`InterpreterOptions`]: crate::python::interpreter::InterpreterOptions

use std::path::PathBuf;

use rustpython_vm::{PyResult, VirtualMachine};

use super::{Policy, SandboxError};
use crate::config::Config;
use crate::python::app::import_module;

/// ctypes' native half: without it `import ctypes` fails however it is tried.
const FFI_MODULES: [&str; 2] = ["_ctypes", "ctypes"];

/// Modules imported before the app's code runs: by RustPython 0.6's own
/// start-up (`VirtualMachine::initialize`: an interpreter without one of
/// these cannot exist), by ferrocorn's loader, and by the import guard and
/// `ferrocorn.sandbox` themselves. Denying one would stop every worker from
/// starting, or leave the module in `sys.modules` where the app could still
/// reach it. Found by denying, one at a time, each module in `sys.modules`
/// when a probe app is imported; tests/deny_module.rs repeats that check.
#[rustfmt::skip]
const NEEDED_BEFORE_THE_APP: &[&str] = &[
    "_ast", "_codecs", "_collections", "_collections_abc", "_contextvars", "_frozen_importlib",
    "_frozen_importlib_external", "_imp", "_io", "_signal", "_sre", "_struct", "_thread",
    "_typing", "_warnings", "_weakref", "_weakrefset", "abc", "ast", "binascii", "codecs",
    "collections", "contextlib", "copyreg", "encodings", "encodings.aliases", "encodings.ascii",
    "encodings.latin_1", "encodings.utf_8", "enum", "errno", "ferrocorn", "ferrocorn.loader",
    "ferrocorn.sandbox", "fnmatch", "functools", "genericpath", "glob", "importlib",
    "importlib._abc", "importlib._bootstrap", "importlib._bootstrap_external", "importlib.util",
    "io", "itertools", "json", "json.decoder", "json.encoder", "json.scanner", "keyword",
    "marshal", "ntpath", "operator", "os", "os.path", "pathlib", "pathlib._os", "posix",
    "posixpath", "re", "re._casefix", "re._compiler", "re._constants", "re._parser", "reprlib",
    "shutil", "stat", "struct", "sys", "threading", "time", "types", "zipfile", "zipfile._path",
    "zipfile._path.glob",
];

/// Refuses the first `--deny-module` name that cannot be honoured, saying
/// why: denying a module also removes its submodules, so a package is
/// refused when any module of it is needed.
pub fn check_deniable(names: &[String]) -> Result<(), SandboxError> {
    for name in names {
        let needed = NEEDED_BEFORE_THE_APP.iter().find(|needed| {
            **needed == name.as_str()
                || needed
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        if let Some(needed) = needed {
            return Err(SandboxError::Refused(format!(
                "--deny-module {name}: ferrocorn cannot deny it: the interpreter or ferrocorn's own \
                 loader imports {needed} before the app runs"
            )));
        }
    }
    Ok(())
}

/// Modules the interpreter goes without, each with the setting that says so.
#[derive(Debug, Clone, Default)]
pub struct ModulePolicy {
    denied: Vec<(String, &'static str)>,
}

impl ModulePolicy {
    pub fn from_config(config: &Config) -> ModulePolicy {
        let mut denied: Vec<(String, &'static str)> = config
            .deny_module
            .iter()
            .map(|name| (name.clone(), "--deny-module"))
            .collect();
        if config.sandbox && !config.allow_ffi {
            denied.extend(
                FFI_MODULES
                    .iter()
                    .map(|name| (name.to_string(), "--sandbox without --allow-ffi")),
            );
        }
        ModulePolicy { denied }
    }

    /// The names to build the interpreter without.
    pub fn removed_names(&self) -> Vec<String> {
        self.denied.iter().map(|(name, _)| name.clone()).collect()
    }

    /// That the interpreter really lacks them (never silently weaker).
    pub fn verify(&self, vm: &VirtualMachine) -> Result<(), SandboxError> {
        for (name, _) in &self.denied {
            if vm.state.module_defs.contains_key(name.as_str())
                || vm.state.frozen.contains_key(name.as_str())
            {
                return Err(SandboxError::Setup(format!(
                    "cannot remove the module {name} from the interpreter"
                )));
            }
        }
        Ok(())
    }

    /// `ferrocorn.sandbox.deny_modules({name: reason})`: the ImportError
    /// names the policy, also for modules the app brings on its own path.
    pub fn install_guard(&self, vm: &VirtualMachine) -> PyResult<()> {
        if self.denied.is_empty() {
            return Ok(());
        }
        let reasons = vm.ctx.new_dict();
        for (name, reason) in &self.denied {
            reasons.set_item(name.as_str(), vm.ctx.new_str(*reason).into(), vm)?;
        }
        let sandbox = import_module(vm, "ferrocorn.sandbox", "deny_modules")?;
        sandbox.get_attr("deny_modules", vm)?.call((reasons,), vm)?;
        Ok(())
    }
}

/// The settings of `ferrocorn.sandbox.install`, as JSON (the module reads
/// it with `json.loads`).
#[derive(Debug, Clone)]
pub struct AppSandbox {
    settings: String,
}

impl AppSandbox {
    /// Resolves the `--allow-connect` host names now, while the resolver's
    /// files and UDP are still reachable: the app's lookups of those names
    /// are answered from this table, all others fail.
    pub fn new(config: &Config, policy: &Policy) -> AppSandbox {
        let mut json = String::from("{\"connect\": [");
        for (i, rule) in config.allow_connect.iter().enumerate() {
            let addresses: Vec<String> = rule
                .resolve()
                .iter()
                .map(|a| json_string(&a.to_string()))
                .collect();
            if rule.host.is_some() && addresses.is_empty() {
                crate::log::warning(&format!(
                    "--allow-connect {rule}: the name does not resolve; connections to it will be refused"
                ));
            }
            json.push_str(&format!(
                "{}{{\"host\": {}, \"port\": {}, \"addresses\": [{}]}}",
                if i == 0 { "" } else { ", " },
                rule.host.as_deref().map_or("null".to_owned(), json_string),
                rule.port,
                addresses.join(", ")
            ));
        }
        let list = |items: &[String]| {
            items
                .iter()
                .map(|s| json_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let paths = |paths: &[PathBuf]| {
            let texts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            list(&texts)
        };
        json.push_str(&format!(
            "], \"env\": [{}], \"tmp\": {}, \"readable\": [{}], \"writable\": [{}], \"subprocess\": {}}}",
            list(policy.kept_environment()),
            json_string(&policy.tmp().display().to_string()),
            paths(&config.allow_read),
            paths(policy.writable()),
            config.allow_subprocess
        ));
        AppSandbox { settings: json }
    }

    /// Runs `ferrocorn.sandbox.install(settings)` before the app is imported.
    pub fn install(&self, vm: &VirtualMachine) -> PyResult<()> {
        let sandbox = import_module(vm, "ferrocorn.sandbox", "install")?;
        sandbox
            .get_attr("install", vm)?
            .call((vm.ctx.new_str(self.settings.as_str()),), vm)?;
        Ok(())
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(json_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
    }

    #[test]
    fn ctypes_is_removed_under_the_sandbox_unless_ffi_is_allowed() {
        let config = |args: &[&str]| {
            let mut words = args.to_vec();
            words.push("app:application");
            Config::from_args(words).unwrap()
        };
        let sandboxed =
            ModulePolicy::from_config(&config(&["--sandbox", "--deny-module", "pickle"]));
        assert_eq!(sandboxed.removed_names(), ["pickle", "_ctypes", "ctypes"]);
        let ffi = ModulePolicy::from_config(&config(&["--sandbox", "--allow-ffi"]));
        assert!(ffi.removed_names().is_empty());
        assert!(
            ModulePolicy::from_config(&config(&[]))
                .removed_names()
                .is_empty()
        );
    }
}
