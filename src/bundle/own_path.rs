//! Where this executable is, for a bundle to read its own payload:
//! `/proc/self/exe` when /proc is mounted; without it (a bare chroot, some
//! sandboxes and `FROM scratch` runtimes), the path the kernel executed
//! (`AT_EXECFN`), then `argv[0]` as the shell would have found it.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Opens this process's executable file, trying each place in turn.
pub fn open_own_executable() -> io::Result<File> {
    let mut first_error = None;
    for path in candidates() {
        match File::open(&path) {
            Ok(file) => return Ok(file),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
}

fn candidates() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("/proc/self/exe")];
    paths.extend(executed_path());
    let argv0 = std::env::args_os().next();
    paths.extend(argv0.and_then(|name| found_as_the_shell_would(&name, std::env::var_os("PATH"))));
    paths
}

/// The path given to execve(2), from the auxiliary vector.
fn executed_path() -> Option<PathBuf> {
    // SAFETY: getauxval only reads the auxiliary vector the kernel set up.
    let address = unsafe { libc::getauxval(libc::AT_EXECFN) };
    if address == 0 {
        return None;
    }
    // SAFETY: AT_EXECFN points at a NUL-terminated string on the initial
    // stack, which lives as long as the process.
    let name = unsafe { CStr::from_ptr(address as *const libc::c_char) };
    Some(PathBuf::from(OsStr::from_bytes(name.to_bytes())))
}

/// `argv[0]` as a path: as given when it has a slash, else the first
/// regular file of that name on `path_variable` (as `execvp` looks).
fn found_as_the_shell_would(name: &OsStr, path_variable: Option<OsString>) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(name));
    }
    let path_variable = path_variable?;
    std::env::split_paths(&path_variable)
        .map(|dir| dir.join(name))
        .find(|candidate| Path::new(candidate).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_a_slash_is_taken_as_given() {
        let found = found_as_the_shell_would(OsStr::new("./srv/app"), None);
        assert_eq!(found, Some(PathBuf::from("./srv/app")));
    }

    #[test]
    fn a_bare_name_is_looked_up_on_path_in_order() {
        let root = std::env::temp_dir().join(format!("own-path-{}", std::process::id()));
        let (first, second) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("shop"), b"").unwrap();
        // A directory of that name is not the program.
        std::fs::create_dir_all(first.join("shop")).unwrap();
        let path = std::env::join_paths([&first, &second]).unwrap();
        let found = found_as_the_shell_would(OsStr::new("shop"), Some(path.clone()));
        assert_eq!(found, Some(second.join("shop")));
        assert_eq!(
            found_as_the_shell_would(OsStr::new("none"), Some(path)),
            None
        );
        assert_eq!(found_as_the_shell_would(OsStr::new("shop"), None), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_executed_path_is_this_test_binary() {
        let executed = executed_path().expect("AT_EXECFN on Linux");
        let same = std::fs::canonicalize(executed).unwrap();
        assert_eq!(same, std::fs::canonicalize("/proc/self/exe").unwrap());
    }
}
