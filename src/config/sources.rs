//! Where settings come from, in Gunicorn's order (each overrides the ones
//! before): defaults (`WEB_CONCURRENCY` is the default worker count, other
//! variables the defaults of their settings), the configuration file
//! (`-c`, default `./gunicorn.conf.py`), `GUNICORN_CMD_ARGS`, the command line.
//!
//! Each source is parsed on its own by the same clap command, so every value
//! is checked the same way; then, setting by setting, the value of the
//! highest source that gave one is kept.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use super::gunicorn::{self, WORKER_CLASS_REASON, WORKER_CLASSES};
use super::{Config, ConfigError};

/// Gunicorn's default configuration file, read when present.
const DEFAULT_CONFIG_FILE: &str = "gunicorn.conf.py";

/// A setting as a configuration file gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileValue {
    /// A bool.
    Flag(bool),
    /// A str, number, list, tuple or dict (as `KEY=VALUE`), as text.
    Values(Vec<String>),
    /// A function: a server hook.
    Hook,
    /// Anything else (modules, classes): not a setting.
    Other,
}

/// The settings of the `ferrocorn` command: its arguments (without the
/// program name) layered over `GUNICORN_CMD_ARGS` and the configuration
/// file, and over `defaults` (a bundle's baked-in settings, as words; empty
/// for a plain ferrocorn) below every other source. A configuration file
/// the defaults name is read when neither the command line nor
/// `GUNICORN_CMD_ARGS` names one, and ranks below the defaults' flags, as it
/// did below the flags given to `ferrocorn bundle`.
pub fn load(cli: Vec<OsString>, defaults: Vec<OsString>) -> Result<Config, ConfigError> {
    let default_matches = parse(&defaults).map_err(|e| within("the bundle's settings", e))?;
    refuse_unsupported_flags(&cli)?;
    let cli_matches = parse(&cli)?;
    let env_words = match std::env::var("GUNICORN_CMD_ARGS") {
        Ok(text) => split_shell_words(&text).map_err(ConfigError::Setting)?,
        Err(_) => Vec::new(),
    };
    refuse_unsupported_flags(&env_words)?;
    let env_matches = parse(&env_words).map_err(|e| within("GUNICORN_CMD_ARGS", e))?;
    let chosen = config_source(&cli_matches, &env_matches);
    let baked = default_matches.get_one::<String>("config").cloned();
    let file_is_baked = chosen.is_none() && baked.is_some();
    let source = chosen.or(baked).or_else(default_config_file);
    let (file_words, hooks) = match &source {
        Some(source) => file_words(source)?,
        None => (Vec::new(), Vec::new()),
    };
    let file_matches = parse(&file_words).map_err(|e| {
        within(
            &format!("configuration file {}", source.as_deref().unwrap_or("")),
            e,
        )
    })?;
    let layers = match file_is_baked {
        true => [&cli_matches, &env_matches, &default_matches, &file_matches],
        false => [&cli_matches, &env_matches, &file_matches, &default_matches],
    };
    let merged = merge(&layers);
    let matches = parse(&merged)?;
    if matches.get_raw("app").is_none() {
        return Err(ConfigError::Setting(
            "no APP_MODULE: name the app on the command line or as wsgi_app in the configuration file"
                .to_owned(),
        ));
    }
    let mut config = Config::from_arg_matches(&matches).map_err(ConfigError::Clap)?;
    // Absolute: hooks execute the file again after --chdir.
    config.config = source.map(|s| match s.starts_with("python:") {
        true => s,
        false => std::path::absolute(&s).map_or(s, |p| p.display().to_string()),
    });
    config.hooks = hooks;
    config.settings_text = describe(&matches);
    if !WORKER_CLASSES.contains(&config.worker_class.as_str()) {
        return Err(ConfigError::Setting(format!(
            "worker_class {:?} is not available: {WORKER_CLASS_REASON}",
            config.worker_class
        )));
    }
    Ok(config)
}

/// `name = value` for every setting, by Gunicorn's names (`--print-config`).
fn describe(matches: &ArgMatches) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for arg in command().get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        let value = match matches.get_raw(id) {
            Some(values) => values
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(","),
            None => String::new(),
        };
        lines.push((gunicorn::name_for(id).to_owned(), value));
    }
    lines.sort();
    lines
}

/// Names the source of an invalid value (clap's message names only the flag).
fn within(source: &str, error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Clap(error) => {
            ConfigError::Setting(format!("in {source}: {}", ConfigError::Clap(error)))
        }
        other => other,
    }
}

/// The command every source is parsed with: APP_MODULE may come from any.
pub(crate) fn command() -> clap::Command {
    Config::command().mut_arg("app", |arg| arg.required(false))
}

fn parse(words: &[OsString]) -> Result<ArgMatches, ConfigError> {
    command()
        .try_get_matches_from(
            std::iter::once(OsString::from("ferrocorn")).chain(words.iter().cloned()),
        )
        .map_err(ConfigError::Clap)
}

/// `-c` from the command line, else from `GUNICORN_CMD_ARGS`.
fn config_source(cli: &ArgMatches, env: &ArgMatches) -> Option<String> {
    [cli, env]
        .into_iter()
        .find_map(|m| m.get_one::<String>("config").cloned())
}

/// `./gunicorn.conf.py`, if it exists.
fn default_config_file() -> Option<String> {
    Path::new(DEFAULT_CONFIG_FILE)
        .exists()
        .then(|| DEFAULT_CONFIG_FILE.to_owned())
}

/// For each setting, the words of the first source (highest precedence
/// first) that set it explicitly.
fn merge(sources: &[&ArgMatches]) -> Vec<OsString> {
    let mut words = Vec::new();
    let mut app = None;
    for arg in command().get_arguments() {
        let id = arg.get_id().as_str();
        let Some(matches) = sources
            .iter()
            .find(|m| m.value_source(id) == Some(ValueSource::CommandLine))
        else {
            continue;
        };
        if id == "app" {
            app = matches
                .get_raw(id)
                .and_then(|mut v| v.next())
                .map(OsStr::to_os_string);
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        match arg.get_action() {
            ArgAction::SetTrue => {
                if matches.get_flag(id) {
                    words.push(OsString::from(format!("--{long}")));
                }
            }
            _ => {
                for value in matches.get_raw(id).into_iter().flatten() {
                    let mut word = OsString::from(format!("--{long}="));
                    word.push(value);
                    words.push(word);
                }
            }
        }
    }
    if let Some(app) = app {
        words.push(OsString::from("--"));
        words.push(app);
    }
    words
}

fn refuse_unsupported_flags(words: &[OsString]) -> Result<(), ConfigError> {
    for word in words {
        let Some(text) = word.to_str() else { continue };
        if text == "--" {
            break;
        }
        if let Some(entry) = gunicorn::unsupported_flag(text) {
            return Err(ConfigError::Unsupported {
                setting: entry.name,
                reason: entry.reason,
            });
        }
    }
    Ok(())
}

/// The configuration file's settings as command-line words, and the names of
/// the server hooks it defines.
fn file_words(source: &str) -> Result<(Vec<OsString>, Vec<String>), ConfigError> {
    let settings = super::file::read(source).map_err(ConfigError::File)?;
    let command = command();
    let mut words = Vec::new();
    let mut hooks = Vec::new();
    for (name, value) in settings {
        if let Some(entry) = gunicorn::unsupported_name(&name) {
            if value != FileValue::Values(Vec::new()) && value != FileValue::Flag(false) {
                return Err(ConfigError::Unsupported {
                    setting: entry.name,
                    reason: entry.reason,
                });
            }
            continue;
        }
        if super::hooks::HOOKS.contains(&name.as_str()) {
            if value == FileValue::Hook {
                hooks.push(name);
            }
            continue;
        }
        let field = gunicorn::field_for(&name);
        // Other names are the file's own variables (imports, helpers), as
        // Gunicorn treats them.
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_id().as_str() == field)
        else {
            continue;
        };
        let values = match value {
            FileValue::Flag(set) => {
                if let (true, Some(long)) = (set, arg.get_long()) {
                    if matches!(arg.get_action(), ArgAction::SetTrue) {
                        words.push(OsString::from(format!("--{long}")));
                        continue;
                    }
                    vec!["true".to_owned()]
                } else {
                    continue;
                }
            }
            FileValue::Values(values) => values,
            FileValue::Hook | FileValue::Other => {
                return Err(ConfigError::Setting(format!(
                    "{name} in the configuration file must be a value, not a function or object"
                )));
            }
        };
        if field == "app" {
            if let Some(app) = values.into_iter().next() {
                words.push(OsString::from("--"));
                words.push(OsString::from(app));
            }
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            return Err(ConfigError::Setting(format!(
                "{name} in the configuration file must be True or False"
            )));
        }
        if matches!(arg.get_action(), ArgAction::Append) {
            for value in values {
                words.push(OsString::from(format!("--{long}={value}")));
            }
        } else if !values.is_empty() {
            // A list for a one-value setting, e.g. forwarded_allow_ips =
            // ["10.0.0.1", "10.0.0.2"]: Gunicorn takes it as the comma list.
            words.push(OsString::from(format!("--{long}={}", values.join(","))));
        }
    }
    // APP_MODULE last: `--` ends the options.
    if let Some(at) = words.iter().position(|w| w == "--") {
        let tail: Vec<OsString> = words.drain(at..at + 2).collect();
        words.extend(tail);
    }
    Ok((words, hooks))
}

/// POSIX shell word splitting as Gunicorn applies it (Python's shlex.split)
/// to `GUNICORN_CMD_ARGS`: quotes and backslashes, no expansion.
fn split_shell_words(text: &str) -> Result<Vec<OsString>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(OsString::from(std::mem::take(&mut word)));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("GUNICORN_CMD_ARGS has an unclosed ' quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err("GUNICORN_CMD_ARGS ends inside a \" quote".to_owned());
                            }
                        },
                        Some(c) => word.push(c),
                        None => return Err("GUNICORN_CMD_ARGS has an unclosed \" quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(OsString::from(word));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_split_like_shlex() {
        let words = split_shell_words(
            r#"-w 3 --bind '0.0.0.0:80' --access-logformat "%(h)s \"%(r)s\"" a\ b"#,
        )
        .unwrap();
        assert_eq!(
            words,
            [
                "-w",
                "3",
                "--bind",
                "0.0.0.0:80",
                "--access-logformat",
                r#"%(h)s "%(r)s""#,
                "a b"
            ]
            .map(OsString::from)
        );
        assert!(split_shell_words("'open").is_err());
    }
}
