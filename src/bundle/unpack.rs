//! A bundle's files on disk: unpacked once into a directory named by the
//! payload's SHA-256, then reused by every start and every worker. Flask's
//! and Django's template loaders, `__file__` and `pkgutil.get_data` all want
//! real paths, which a zip on `sys.path` would not give them.

use std::fs;
use std::io::{self, Cursor};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Written last into an unpacked directory: without it the directory is an
/// interrupted unpack, not to be used.
const COMPLETE: &str = ".ferrocorn-bundle-complete";

/// Why the payload could not be unpacked.
#[derive(Debug)]
pub enum UnpackError {
    /// No directory to unpack into could be made or used (each tried, why).
    NoDirectory(Vec<(PathBuf, String)>),
    /// The archive is not a zip ferrocorn wrote.
    Archive(String),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for UnpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnpackError::NoDirectory(tried) => {
                let tried: Vec<String> = tried
                    .iter()
                    .map(|(path, why)| format!("{} ({why})", path.display()))
                    .collect();
                write!(
                    f,
                    "cannot unpack the bundle: no writable directory of its own (tried {}); set FERROCORN_BUNDLE_DIR to a writable directory (a volume, with a read-only root)",
                    tried.join(", ")
                )
            }
            UnpackError::Archive(why) => write!(f, "the bundle's payload is not readable: {why}"),
            UnpackError::Io(path, error) => {
                write!(
                    f,
                    "cannot unpack the bundle into {}: {error}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for UnpackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UnpackError::Io(_, error) => Some(error),
            UnpackError::NoDirectory(_) | UnpackError::Archive(_) => None,
        }
    }
}

/// Where bundles may be unpacked, first choice first: FERROCORN_BUNDLE_DIR,
/// the user's cache directory, then a directory of this user's in /tmp.
pub fn candidate_roots() -> Vec<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("FERROCORN_BUNDLE_DIR") {
        return vec![dir];
    }
    let mut roots = Vec::new();
    if let Some(cache) = var("XDG_CACHE_HOME") {
        roots.push(cache.join("ferrocorn-bundles"));
    } else if let Some(home) = var("HOME") {
        roots.push(home.join(".cache/ferrocorn-bundles"));
    }
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    roots.push(std::env::temp_dir().join(format!("ferrocorn-bundles-{uid}")));
    roots
}

/// The directory holding the payload `payload` (whose SHA-256 names it),
/// unpacked now unless an earlier start did.
pub fn unpacked(payload: &[u8], name: &str) -> Result<PathBuf, UnpackError> {
    let mut tried = Vec::new();
    for root in candidate_roots() {
        match own_directory(&root) {
            Ok(()) => {}
            Err(why) => {
                tried.push((root, why));
                continue;
            }
        }
        let dir = root.join(name);
        if is_complete(&dir) {
            return Ok(dir);
        }
        match unpack_into(&root, &dir, payload) {
            Ok(()) => return Ok(dir),
            Err(UnpackError::Io(path, error)) if is_unwritable(&error) => {
                tried.push((path, error.to_string()));
            }
            Err(error) => return Err(error),
        }
    }
    Err(UnpackError::NoDirectory(tried))
}

fn is_unwritable(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EROFS | libc::EACCES | libc::EPERM | libc::ENOSPC | libc::EDQUOT)
    )
}

/// `root` exists (made if need be, mode 0700), is a directory of this user's
/// and nobody else may write in it: another user must not be able to plant
/// an "unpacked bundle" for us to run.
fn own_directory(root: &Path) -> Result<(), String> {
    if let Err(error) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
    {
        return Err(error.to_string());
    }
    let meta = fs::symlink_metadata(root).map_err(|e| e.to_string())?;
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() {
        return Err("not a directory".to_owned());
    }
    if meta.uid() != uid {
        return Err(format!("owned by uid {}, not {uid}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err("writable by others".to_owned());
    }
    Ok(())
}

fn is_complete(dir: &Path) -> bool {
    dir.join(COMPLETE).is_file()
}

/// Unpacks into a fresh directory beside `dir`, then renames it into place,
/// so a start that is interrupted, or two that race, never leave a
/// half-written `dir` behind.
fn unpack_into(root: &Path, dir: &Path, payload: &[u8]) -> Result<(), UnpackError> {
    // The pid alone may repeat across containers sharing a volume.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let staging = root.join(format!(".unpacking-{}-{nanos}", std::process::id()));
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |error| UnpackError::Io(path, error)
    };
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging).map_err(io_error(&staging))?;
    let result = extract(payload, &staging).and_then(|()| {
        fs::write(staging.join(COMPLETE), b"").map_err(io_error(&staging))?;
        match fs::rename(&staging, dir) {
            Ok(()) => Ok(()),
            // Another start unpacked the same payload first: use theirs.
            Err(_) if is_complete(dir) => Ok(()),
            Err(error) => Err(UnpackError::Io(dir.to_owned(), error)),
        }
    });
    let _ = fs::remove_dir_all(&staging);
    result
}

fn extract(payload: &[u8], into: &Path) -> Result<(), UnpackError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(payload))
        .map_err(|e| UnpackError::Archive(e.to_string()))?;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| UnpackError::Archive(e.to_string()))?;
        // enclosed_name refuses absolute paths and `..`.
        let Some(relative) = entry.enclosed_name() else {
            return Err(UnpackError::Archive(format!(
                "entry {:?} points outside the bundle",
                entry.name().unwrap_or_default()
            )));
        };
        let path = into.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&path).map_err(|e| UnpackError::Io(path.clone(), e))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| UnpackError::Io(parent.to_owned(), e))?;
        }
        let mut file = fs::File::create(&path).map_err(|e| UnpackError::Io(path.clone(), e))?;
        io::copy(&mut entry, &mut file).map_err(|e| UnpackError::Io(path.clone(), e))?;
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o755;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| UnpackError::Io(path.clone(), e))?;
    }
    Ok(())
}
