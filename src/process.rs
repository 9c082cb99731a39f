//! Process-level operations of the arbiter: fork, exit statuses, the pid
//! file, user and group switching, process names.

use std::io;
use std::path::{Path, PathBuf};

/// The exit status of a forked child whose code panicked.
pub const EXIT_CHILD_PANICKED: i32 = 70;

/// Forks; the child runs `child` and exits with its code, never returning
/// (also when `child` panics: see [`EXIT_CHILD_PANICKED`]).
pub fn fork(child: impl FnOnce() -> i32) -> io::Result<libc::pid_t> {
    // SAFETY: when the arbiter forks, its only other thread, if any, is the
    // hooks thread, idle in a channel receive (hook calls are synchronous and
    // none is running), so it holds no lock: the child's copy of every lock
    // and of the allocator is consistent. The child never touches that
    // thread's interpreter and ends with process::exit, dropping nothing.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // A panic must end the child here: unwinding out of this function
            // would run the parent's code on in the child (a second arbiter,
            // forking workers of its own).
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child))
                .unwrap_or(EXIT_CHILD_PANICKED);
            std::process::exit(code);
        }
        pid => Ok(pid),
    }
}

/// In a forked worker: be sent SIGTERM when the arbiter dies, however it
/// dies (even SIGKILL), so no worker outlives it. `false` if it is already gone.
pub fn follow_parent(parent: libc::pid_t) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory effects.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        );
        // The arbiter may have died between fork and prctl.
        libc::getppid() == parent
    }
}

/// PR_SET_CHILD_SUBREAPER: orphaned descendants are re-parented to this
/// process (not to init), so it can wait for them (see prctl(2)).
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn send_signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory effects; a pid that is gone gives ESRCH.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A child that ended: its pid and wait status.
pub fn reap() -> Option<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    // SAFETY: waitpid with a valid out-pointer; WNOHANG never blocks.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// The exit code, if the process exited rather than died of a signal.
pub fn exit_code(status: libc::c_int) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

/// "exited with code 0" / "was killed by signal 9 (SIGKILL)".
pub fn describe_exit(status: libc::c_int) -> String {
    if let Some(code) = exit_code(status) {
        return format!("exited with code {code}");
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        return format!("was killed by signal {signal} ({})", signal_name(signal));
    }
    format!("ended with status {status}")
}

pub fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGBUS => "SIGBUS",
        _ => "signal",
    }
}

/// Names the calling thread (what `ps -o comm` and `top` show), 15 bytes at most.
pub fn set_process_name(name: &str) {
    let mut bytes = name.as_bytes()[..name.len().min(15)].to_vec();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// The CPU time the calling thread has used (user and system).
pub fn thread_cpu_time() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer;
    // CLOCK_THREAD_CPUTIME_ID exists on every Linux we run on.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if result != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

pub fn write_pidfile(path: &Path) -> io::Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
}

/// Why a user or group could not be looked up.
#[derive(Debug)]
pub enum AccountError {
    /// The account database (/etc/passwd, /etc/group) could not be read.
    Read { database: PathBuf, error: io::Error },
    /// It has no such entry (`what` names it).
    Unknown { what: String, database: PathBuf },
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountError::Read { database, error } => {
                write!(f, "cannot read {}: {error}", database.display())
            }
            AccountError::Unknown { what, database } => {
                write!(f, "no {what} in {}", database.display())
            }
        }
    }
}

impl std::error::Error for AccountError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccountError::Read { error, .. } => Some(error),
            AccountError::Unknown { .. } => None,
        }
    }
}

fn read_database(database: &Path) -> Result<String, AccountError> {
    std::fs::read_to_string(database).map_err(|error| AccountError::Read {
        database: database.to_owned(),
        error,
    })
}

/// A uid or gid from a number or a name in /etc/passwd or /etc/group (read
/// directly: a static binary cannot load the NSS modules getpwnam needs).
pub fn resolve_id(value: &str, database: &Path) -> Result<u32, AccountError> {
    if let Ok(id) = value.parse() {
        return Ok(id);
    }
    let text = read_database(database)?;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(value)).then(|| fields.nth(1).and_then(|id| id.parse().ok()))?
        })
        .ok_or_else(|| AccountError::Unknown {
            what: format!("{value:?}"),
            database: database.to_owned(),
        })
}

/// The supplementary groups of `user` for `--initgroups`: every group of
/// `group_database` (/etc/group) listing it as a member, plus `gid`. Read
/// from the file, not through NSS, which a static binary cannot load.
pub fn supplementary_groups(
    user: &str,
    gid: u32,
    group_database: &Path,
) -> Result<Vec<u32>, AccountError> {
    let text = read_database(group_database)?;
    let mut groups = vec![gid];
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let fields: Vec<&str> = line.split(':').collect();
        if let [_, _, id, members] = fields.as_slice()
            && members.split(',').any(|m| m.trim() == user)
            && let Ok(id) = id.parse()
        {
            groups.push(id);
        }
    }
    groups.sort_unstable();
    groups.dedup();
    Ok(groups)
}

/// The name and primary group of `user` (a name or a uid) in `passwd`.
pub fn user_entry(user: &str, passwd: &Path) -> Result<(String, u32), AccountError> {
    let text = read_database(passwd)?;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let (name, uid, gid) = (fields.first()?, fields.get(2)?, fields.get(3)?);
            (*name == user || *uid == user).then(|| Some((name.to_string(), gid.parse().ok()?)))?
        })
        .ok_or_else(|| AccountError::Unknown {
            what: format!("user {user:?}"),
            database: passwd.to_owned(),
        })
}

/// Drops to `gid` and `uid` (group first, while still allowed to), with
/// `groups` as the supplementary groups (none when not given).
pub fn switch_user(uid: Option<u32>, gid: Option<u32>, groups: Option<&[u32]>) -> io::Result<()> {
    // SAFETY: plain credential syscalls; the group list outlives the call;
    // failures are reported via errno.
    unsafe {
        if let Some(groups) = groups {
            let list: Vec<libc::gid_t> = groups.iter().map(|&g| g as libc::gid_t).collect();
            if libc::setgroups(list.len(), list.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Without a list the arbiter's own (root's) supplementary groups
        // would stay with the workers.
        let switching = uid.is_some() || gid.is_some();
        if groups.is_none()
            && switching
            && libc::setgroups(0, std::ptr::null()) != 0
            && libc::getuid() == 0
        {
            return Err(io::Error::last_os_error());
        }
        if let Some(gid) = gid
            && libc::setgid(gid) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if let Some(uid) = uid
            && libc::setuid(uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_resolve_from_numbers_and_files() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let passwd = dir.join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n",
        )
        .unwrap();
        assert_eq!(resolve_id("www-data", &passwd).ok(), Some(33));
        assert_eq!(resolve_id("1000", &passwd).ok(), Some(1000));
        assert!(resolve_id("nobody-here", &passwd).is_err());
        let group = dir.join("group");
        std::fs::write(&group, "# comment\nadm:x:4:syslog,www-data\nwww-data:x:33:\nweb:x:500: www-data \nother:x:7:bob\n").unwrap();
        assert_eq!(
            supplementary_groups("www-data", 33, &group).ok(),
            Some(vec![4, 33, 500])
        );
        assert_eq!(
            user_entry("www-data", &passwd).ok().map(|(_, gid)| gid),
            Some(33)
        );
    }

    #[test]
    fn exit_statuses_are_described() {
        assert_eq!(describe_exit(3 << 8), "exited with code 3");
        assert_eq!(describe_exit(9), "was killed by signal 9 (SIGKILL)");
    }
}
