//! `ferrocorn bundle`: the executable plus the app's directory, its
//! `--pythonpath` entries (wheels unpacked) and the settings given, as one
//! file. Entries are sorted and carry fixed times and modes, so the same
//! inputs give the same bytes.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::payload;
use super::{APP_DIR, ARGS_FILE, LIB_DIR};

/// Names left out of a bundle wherever they appear (version control,
/// caches, virtual environments), besides `--exclude` patterns.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    ".venv",
    ".DS_Store",
];

/// What goes into a bundle.
pub struct Inputs<'a> {
    /// The ferrocorn executable (without a payload of its own).
    pub executable: Vec<u8>,
    pub app_dir: &'a Path,
    /// `--pythonpath` entries: directories, `.whl` or `.zip` files.
    pub libs: &'a [PathBuf],
    /// The settings baked in, as command-line words (APP_MODULE among them).
    pub args: &'a [String],
    /// `--exclude` patterns, over and above [`DEFAULT_EXCLUDES`].
    pub excludes: &'a [String],
    /// Files of the bundle's own (name in the payload, bytes): a
    /// configuration file named by `-c`.
    pub extra: Vec<(String, Vec<u8>)>,
    /// The file being written, left out if it lies in the app's directory.
    pub output: &'a Path,
}

/// What was put in, for the report.
#[derive(Debug, Default)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
    /// C extension modules found (and left out): RustPython cannot load them.
    pub c_extensions: Vec<String>,
    /// Modules compiled to bytecode.
    pub compiled: usize,
}

/// Why a bundle could not be written.
#[derive(Debug)]
pub enum BundleWriteError {
    Read(PathBuf, io::Error),
    Archive(PathBuf, String),
    Write(PathBuf, io::Error),
    /// The executable has no payload marker (not a ferrocorn binary?).
    NoMarker,
    /// The modules could not be compiled (the interpreter failed).
    Compile(String),
}

impl std::fmt::Display for BundleWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleWriteError::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            BundleWriteError::Archive(path, e) => {
                write!(f, "{}: not a readable wheel or zip: {e}", path.display())
            }
            BundleWriteError::Write(path, e) => write!(f, "cannot write {}: {e}", path.display()),
            BundleWriteError::NoMarker => {
                f.write_str("this ferrocorn executable has no payload marker")
            }
            BundleWriteError::Compile(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for BundleWriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BundleWriteError::Read(_, error) | BundleWriteError::Write(_, error) => Some(error),
            _ => None,
        }
    }
}

/// Writes the bundle to `inputs.output`.
pub fn write(inputs: &Inputs) -> Result<Summary, BundleWriteError> {
    let mut entries: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new();
    let mut summary = Summary::default();
    let output = fs::canonicalize(inputs.output).ok();
    let skip = |relative: &str| excluded(relative, inputs.excludes);
    collect_dir(
        inputs.app_dir,
        APP_DIR,
        &skip,
        output.as_deref(),
        &mut entries,
        &mut summary,
    )?;
    for (index, lib) in inputs.libs.iter().enumerate() {
        let prefix = format!("{LIB_DIR}/{index}");
        if lib.is_dir() {
            collect_dir(
                lib,
                &prefix,
                &skip,
                output.as_deref(),
                &mut entries,
                &mut summary,
            )?;
        } else {
            collect_archive(lib, &prefix, &skip, &mut entries, &mut summary)?;
        }
    }
    let sources: Vec<(String, Vec<u8>)> = entries
        .iter()
        .filter(|(name, _)| name.ends_with(".py") && !name.contains(".dist-info/"))
        .map(|(name, (bytes, _))| (name.clone(), bytes.clone()))
        .collect();
    for (name, pyc) in super::bytecode::compile(sources).map_err(BundleWriteError::Compile)? {
        entries.insert(name, (pyc, false));
        summary.compiled += 1;
    }
    for (name, bytes) in &inputs.extra {
        entries.insert(name.clone(), (bytes.clone(), false));
    }
    entries.insert(
        ARGS_FILE.to_owned(),
        (inputs.args.join("\0").into_bytes(), false),
    );
    let archive =
        zip_entries(&entries).map_err(|e| BundleWriteError::Write(inputs.output.to_owned(), e))?;
    let executable =
        payload::mark_bundled(inputs.executable.clone()).ok_or(BundleWriteError::NoMarker)?;
    let staging = inputs.output.with_extension("partial");
    let write_all = || -> io::Result<()> {
        let mut file = fs::File::create(&staging)?;
        file.write_all(&executable)?;
        file.write_all(&archive)?;
        file.write_all(&payload::trailer(&archive))?;
        file.set_permissions(fs::Permissions::from_mode(0o755))?;
        file.sync_all()?;
        fs::rename(&staging, inputs.output)
    };
    write_all().map_err(|e| {
        let _ = fs::remove_file(&staging);
        BundleWriteError::Write(inputs.output.to_owned(), e)
    })?;
    summary.files = entries.len() - 1 - inputs.extra.len() - summary.compiled;
    summary.bytes = (executable.len() + archive.len()) as u64 + payload::TRAILER_LEN;
    Ok(summary)
}

/// Whether `relative` (a path inside the bundle, `/`-separated) is left out:
/// a default name matching any of its components, or an `--exclude`
/// pattern matching a component or the whole path.
pub fn excluded(relative: &str, patterns: &[String]) -> bool {
    let components: Vec<&str> = relative.split('/').collect();
    let defaults = DEFAULT_EXCLUDES.iter().copied();
    let given = patterns.iter().map(String::as_str);
    defaults.chain(given).any(|pattern| {
        let pattern = pattern.trim_end_matches('/');
        glob_match(pattern, relative) || components.iter().any(|c| glob_match(pattern, c))
    })
}

/// `*` (any run of characters, `/` included), `?` (one character); the rest literal.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn is_c_extension(name: &str) -> bool {
    name.ends_with(".so") || name.contains(".so.") || name.ends_with(".pyd")
}

fn collect_dir(
    dir: &Path,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    output: Option<&Path>,
    entries: &mut BTreeMap<String, (Vec<u8>, bool)>,
    summary: &mut Summary,
) -> Result<(), BundleWriteError> {
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let listing =
            fs::read_dir(&current).map_err(|e| BundleWriteError::Read(current.clone(), e))?;
        for item in listing {
            let item = item.map_err(|e| BundleWriteError::Read(current.clone(), e))?;
            let path = item.path();
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if skip(&relative)
                || output.is_some_and(|o| fs::canonicalize(&path).ok().as_deref() == Some(o))
            {
                continue;
            }
            // Symbolic links are followed: the bundle holds what they point to.
            let meta = fs::metadata(&path).map_err(|e| BundleWriteError::Read(path.clone(), e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                if is_c_extension(&relative) {
                    summary.c_extensions.push(format!("{prefix}/{relative}"));
                    continue;
                }
                let bytes = fs::read(&path).map_err(|e| BundleWriteError::Read(path.clone(), e))?;
                let executable = meta.permissions().mode() & 0o111 != 0;
                entries.insert(format!("{prefix}/{relative}"), (bytes, executable));
            }
        }
    }
    Ok(())
}

/// A wheel or zip on the path: its files, unpacked into the bundle.
fn collect_archive(
    path: &Path,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    entries: &mut BTreeMap<String, (Vec<u8>, bool)>,
    summary: &mut Summary,
) -> Result<(), BundleWriteError> {
    let file = fs::File::open(path).map_err(|e| BundleWriteError::Read(path.to_owned(), e))?;
    let archive_error =
        |e: zip::result::ZipError| BundleWriteError::Archive(path.to_owned(), e.to_string());
    let mut archive = ZipArchive::new(file).map_err(archive_error)?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(archive_error)?;
        let Some(relative) = entry.enclosed_name() else {
            continue;
        };
        let relative = relative.to_string_lossy().replace('\\', "/");
        if entry.is_dir() || skip(&relative) {
            continue;
        }
        if is_c_extension(&relative) {
            summary
                .c_extensions
                .push(format!("{} ({relative})", path.display()));
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| BundleWriteError::Read(path.to_owned(), e))?;
        entries.insert(format!("{prefix}/{relative}"), (bytes, false));
    }
    Ok(())
}

fn zip_entries(entries: &BTreeMap<String, (Vec<u8>, bool)>) -> io::Result<Vec<u8>> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, (bytes, executable)) in entries {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(DateTime::default())
            .unix_permissions(if *executable { 0o755 } else { 0o644 });
        writer
            .start_file(name.as_str(), options)
            .map_err(io::Error::other)?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish().map_err(io::Error::other)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_and_given_patterns_are_left_out() {
        let given = [
            "tests".to_owned(),
            "*.log".to_owned(),
            "docs/*.md".to_owned(),
        ];
        for path in [
            ".git/config",
            "pkg/__pycache__/m.cpython-314.pyc",
            "a.pyc",
            ".venv/bin/python",
            "tests/test_app.py",
            "var/app.log",
            "docs/intro.md",
        ] {
            assert!(excluded(path, &given), "{path}");
        }
        for path in [
            "app.py",
            "templates/index.html",
            "static/app.css",
            "testsuite.py",
            "docs/intro.rst",
            "pkg/gitignore",
        ] {
            assert!(!excluded(path, &given), "{path}");
        }
    }

    #[test]
    fn globs_match_as_in_shells_with_star_crossing_slashes() {
        assert!(glob_match("*.py", "a.py"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("docs/*", "docs/a/b.md"));
        assert!(!glob_match("*.py", "a.pyc"));
        assert!(!glob_match("a?c", "ac"));
    }
}
