//! The private temporary directory each sandboxed worker gets (its
//! `TMPDIR`, where `tempfile` and spilled request bodies go): created mode
//! 0700 by the unconfined parent, removed by it when the worker has ended,
//! however it ended.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory removed (with its contents) when this is dropped.
#[derive(Debug)]
pub struct PrivateTmp {
    path: PathBuf,
}

impl PrivateTmp {
    /// Creates `ferrocorn-PID-N.NS` (NS: this process's PID namespace) in
    /// the system temporary directory, owned by `owner` (uid, gid) when the
    /// worker runs as another user.
    pub fn create(owner: Option<(u32, u32)>) -> io::Result<PrivateTmp> {
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let (pid, namespace) = (std::process::id(), pid_namespace());
        loop {
            let n = CREATED.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("ferrocorn-{pid}-{n}.{namespace}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let tmp = PrivateTmp { path };
                    if let Some((uid, gid)) = owner {
                        std::os::unix::fs::chown(&tmp.path, Some(uid), Some(gid))?;
                    }
                    return Ok(tmp);
                }
                // Left by an earlier process with the same pid: take the next name.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directories left by ferrocorn processes that are gone
    /// without cleaning up (killed with SIGKILL, say): `ferrocorn-PID-N.NS`
    /// whose PID no longer exists in this PID namespace. Directories of other
    /// namespaces (a container sharing this /tmp) are left alone: their pids
    /// mean nothing here.
    pub fn remove_stale() {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        let ours = pid_namespace();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((pid, namespace)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            if namespace != ours {
                continue;
            }
            // SAFETY: kill(2) with signal 0 only checks that the pid exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The inode of this process's PID namespace (0 if /proc is not mounted).
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// `ferrocorn-PID-N.NS` -> (PID, NS).
fn parse_name(name: &str) -> Option<(libc::pid_t, u64)> {
    let (pid, rest) = name.strip_prefix("ferrocorn-")?.split_once('-')?;
    let (n, namespace) = rest.split_once('.')?;
    n.parse::<u64>().ok()?;
    Some((pid.parse().ok()?, namespace.parse().ok()?))
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_processes_that_are_gone_are_removed() {
        // pid_max is at most 2^22: this pid cannot exist.
        let namespace = pid_namespace();
        let stale = std::env::temp_dir().join(format!("ferrocorn-4999999-0.{namespace}"));
        std::fs::create_dir_all(stale.join("sub")).unwrap();
        let elsewhere = std::env::temp_dir().join(format!("ferrocorn-4999999-0.{}", namespace + 1));
        std::fs::create_dir_all(&elsewhere).unwrap();
        let ours = PrivateTmp::create(None).unwrap();
        PrivateTmp::remove_stale();
        assert!(!stale.exists());
        assert!(ours.path().exists(), "a live process's directory stays");
        assert!(
            elsewhere.exists(),
            "another PID namespace's directory stays"
        );
        std::fs::remove_dir(&elsewhere).unwrap();
    }

    #[test]
    fn the_directory_is_private_and_removed_with_its_contents() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = PrivateTmp::create(None).unwrap();
        let path = tmp.path().to_owned();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::create_dir(path.join("sub")).unwrap();
        std::fs::write(path.join("sub/file"), b"x").unwrap();
        drop(tmp);
        assert!(!path.exists());
    }
}
