//! `Config::sandbox` in library use: every interpreter thread confines
//! itself as it starts (the host program's threads stay as they are), with a
//! private temporary directory that lives as long as the app or server.

use crate::config::Config;
use crate::sandbox::{self, Policy, PrivateTmp, SandboxError};
use crate::wsgi::boot::HostSettings;

/// `settings` with the sandbox applied when `config` asks for it, and the
/// temporary directory to keep until the interpreters have ended.
pub fn library_sandbox(
    config: &Config,
    settings: HostSettings,
) -> Result<(HostSettings, Option<PrivateTmp>), SandboxError> {
    sandbox::check_settings(config)?;
    if !config.sandbox {
        return Ok((settings, None));
    }
    let tmp = PrivateTmp::create(None)
        .map_err(|error| SandboxError::PrivateTmp(std::sync::Arc::new(error)))?;
    let policy = Policy::new(config, &settings.sys_path, tmp.path());
    Ok((settings.sandboxed(config, policy, true), Some(tmp)))
}
