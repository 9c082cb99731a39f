//! `--reload`: the worker polls the modification times of the app's source
//! files (every module it imported, plus `--reload-extra-file`s) once per
//! loop tick, as Gunicorn's default reloader does, and retires itself when
//! one changes; the arbiter then starts a fresh worker that imports anew.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Files scanned when the app failed to load: its modules are unknown, so
/// every `.py` below the working directory is watched, up to this many.
const MAX_SCANNED_FILES: usize = 10_000;

/// The watched files and the modification times they had at start.
#[derive(Debug)]
pub struct FileWatcher {
    files: Vec<(PathBuf, Option<SystemTime>)>,
}

impl FileWatcher {
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> FileWatcher {
        let mut paths: Vec<PathBuf> = paths.into_iter().collect();
        paths.sort();
        paths.dedup();
        FileWatcher {
            files: paths
                .into_iter()
                .map(|path| {
                    let modified = modified(&path);
                    (path, modified)
                })
                .collect(),
        }
    }

    /// Every `.py` file below `dir` (hidden directories skipped).
    pub fn python_files_below(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let hidden = path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() && !hidden => pending.push(path),
                    Ok(kind) if kind.is_file() && path.extension().is_some_and(|e| e == "py") => {
                        found.push(path);
                        if found.len() >= MAX_SCANNED_FILES {
                            return found;
                        }
                    }
                    _ => {}
                }
            }
        }
        found
    }

    /// The watched files.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(path, _)| path.clone()).collect()
    }

    /// How many files are watched.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The first file whose modification time changed (or that appeared or
    /// vanished) since the watcher started.
    pub fn changed(&self) -> Option<&Path> {
        self.files
            .iter()
            .find(|(path, seen)| modified(path) != *seen)
            .map(|(path, _)| path.as_path())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modified_file_is_reported() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-reload-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        let file = dir.join("pkg/mod.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let watcher = FileWatcher::new(FileWatcher::python_files_below(&dir));
        assert_eq!(watcher.len(), 1);
        assert_eq!(watcher.changed(), None);
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(watcher.changed(), Some(file.as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
