//! One-file deployment: `ferrocorn bundle` writes the executable with the
//! app, its dependencies and its settings appended as a zip payload
//! ([`payload`]); when such an executable starts, [`open_self`] checks the
//! payload, unpacks it once ([`unpack`]) and the settings it holds become the
//! defaults that flags, a configuration file and `GUNICORN_CMD_ARGS` override.

mod bytecode;
pub mod create;
mod own_path;
pub mod payload;
mod unpack;

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The app's directory inside the payload (`--chdir` at run time).
pub const APP_DIR: &str = "app";
/// `--pythonpath` entries inside the payload: `lib/0`, `lib/1`, ... in order.
pub const LIB_DIR: &str = "lib";
/// The baked-in settings, command-line words separated by NUL.
pub const ARGS_FILE: &str = ".ferrocorn-bundle/args";
/// How a baked-in value names a file of the bundle (`--config=@bundle/...`).
pub const IN_BUNDLE: &str = "@bundle/";

/// Why a bundle cannot start.
#[derive(Debug)]
pub enum BundleError {
    Payload(payload::PayloadError),
    Unpack(unpack::UnpackError),
    Manifest(PathBuf, std::io::Error),
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::Payload(error) => write!(f, "{error}"),
            BundleError::Unpack(error) => write!(f, "{error}"),
            BundleError::Manifest(path, error) => {
                write!(f, "the unpacked bundle lacks {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for BundleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BundleError::Payload(error) => Some(error),
            BundleError::Unpack(error) => Some(error),
            BundleError::Manifest(_, error) => Some(error),
        }
    }
}

/// A bundle's unpacked files and settings.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Where the payload was unpacked.
    pub root: PathBuf,
    /// The settings given to `ferrocorn bundle`.
    pub args: Vec<String>,
    libs: Vec<PathBuf>,
}

impl Bundle {
    pub fn app_dir(&self) -> PathBuf {
        self.root.join(APP_DIR)
    }

    /// `--pythonpath` for the unpacked entries.
    pub fn pythonpath(&self) -> String {
        let libs: Vec<String> = self.libs.iter().map(|p| p.display().to_string()).collect();
        libs.join(",")
    }

    /// `--chdir` and `--pythonpath` for the unpacked files, unless `given`
    /// (the user's words, for `call`, which has no layers) sets them itself.
    fn location_words(&self, given: &[OsString]) -> Vec<OsString> {
        let sets = |flag: &str| {
            given
                .iter()
                .any(|w| w == flag || w.to_string_lossy().starts_with(&format!("{flag}=")))
        };
        let mut words = Vec::new();
        if !sets("--chdir") {
            words.extend([OsString::from("--chdir"), self.app_dir().into()]);
        }
        if !sets("--pythonpath") && !self.libs.is_empty() {
            words.extend([OsString::from("--pythonpath"), self.pythonpath().into()]);
        }
        words
    }

    /// The server's settings under the user's: the baked-in words and the
    /// unpacked locations, as the lowest layer (the user's flags override
    /// them there).
    pub fn server_defaults(&self) -> Vec<OsString> {
        let root = format!("{}/", self.root.display());
        let mut words: Vec<OsString> = self
            .args
            .iter()
            .map(|w| OsString::from(w.replacen(&format!("={IN_BUNDLE}"), &format!("={root}"), 1)))
            .collect();
        words.extend(self.location_words(&[]));
        words
    }

    /// `call` with the bundle's app and locations: `call PATH` names no app
    /// (the bundle's is put in), and `--chdir` and `--pythonpath` are added
    /// unless the user set them.
    pub fn call_words(&self, rest: Vec<OsString>) -> Vec<OsString> {
        let locations = self.location_words(&rest);
        let names_app = rest
            .first()
            .is_some_and(|w| !w.to_string_lossy().starts_with('/'));
        let mut words = Vec::new();
        if !names_app {
            words.extend(self.app_module().map(OsString::from));
        }
        words.extend(rest);
        words.extend(locations);
        words
    }

    /// The baked-in APP_MODULE: the one word that is not a flag or a flag's value.
    fn app_module(&self) -> Option<String> {
        let command = crate::config::command_for_bundles();
        let matches = command
            .try_get_matches_from(
                std::iter::once("ferrocorn".to_owned()).chain(self.args.iter().cloned()),
            )
            .ok()?;
        matches.get_one::<String>("app").cloned()
    }
}

/// This executable's bundle: `None` for a plain ferrocorn; an error for a
/// bundle whose payload is missing, cut short or damaged, or that cannot
/// be unpacked.
pub fn open_self() -> Result<Option<Bundle>, BundleError> {
    let mut file = match own_path::open_own_executable() {
        Ok(file) => file,
        // Without /proc and with no path to ourselves: a plain binary
        // serves; a bundle says why it cannot.
        Err(error) if payload::marked_as_bundle() => {
            return Err(BundleError::Payload(payload::PayloadError::Io(error)));
        }
        Err(_) => return Ok(None),
    };
    let Some(located) = payload::locate(&mut file).map_err(BundleError::Payload)? else {
        return match payload::marked_as_bundle() {
            true => Err(BundleError::Payload(payload::PayloadError::Missing)),
            false => Ok(None),
        };
    };
    let bytes = payload::read_verified(&mut file, &located).map_err(BundleError::Payload)?;
    let name: String = located.sha256[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let root = unpack::unpacked(&bytes, &name).map_err(BundleError::Unpack)?;
    let args_path = root.join(ARGS_FILE);
    let args = std::fs::read_to_string(&args_path)
        .map_err(|e| BundleError::Manifest(args_path.clone(), e))?;
    let args = args
        .split('\0')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let mut libs: Vec<(usize, PathBuf)> = std::fs::read_dir(root.join(LIB_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    libs.sort();
    Ok(Some(Bundle {
        root,
        args,
        libs: libs.into_iter().map(|(_, path)| path).collect(),
    }))
}

/// The executable without any payload of its own: what a new bundle is
/// built from, whether this process is a plain ferrocorn or a bundle.
pub fn own_executable() -> std::io::Result<Vec<u8>> {
    let mut file = own_path::open_own_executable()?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    if let Ok(Some(located)) = payload::locate(&mut file) {
        bytes.truncate(located.executable_len as usize);
    }
    Ok(bytes)
}

/// What the bundle at `path` holds: its settings and files, one per line.
pub fn describe(path: &Path) -> Result<Vec<String>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let located = payload::locate(&mut file)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is not a ferrocorn bundle", path.display()))?;
    let bytes = payload::read_verified(&mut file, &located).map_err(|e| e.to_string())?;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| e.to_string())?;
        let name = entry.name().map_err(|e| e.to_string())?.into_owned();
        if name == ARGS_FILE {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).map_err(|e| e.to_string())?;
            lines.insert(
                0,
                format!(
                    "settings: {}",
                    text.split('\0').collect::<Vec<_>>().join(" ")
                ),
            );
            continue;
        }
        lines.push(format!("{:>10}  {name}", entry.size()));
    }
    Ok(lines)
}
