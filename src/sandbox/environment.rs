//! `--allow-env`: the environment the app sees. Applied to the process while
//! it is single-threaded (a worker, `ferrocorn call`) and again to the
//! interpreter's `os.environ` (the library, whose host keeps its own).

/// Variables that point `tempfile` (and the server's body spill) at the
/// worker's private temporary directory.
pub const TEMP_VARIABLES: [&str; 3] = ["TMPDIR", "TMP", "TEMP"];

/// Removes every variable not named in `keep` from this process, then points
/// the temporary-directory variables at `private_tmp`.
///
/// # Safety
/// No other thread may read or write the environment meanwhile (call it
/// before any thread is started).
pub unsafe fn restrict(keep: &[String], private_tmp: &std::path::Path) {
    let names: Vec<std::ffi::OsString> = std::env::vars_os().map(|(name, _)| name).collect();
    for name in names {
        if !keep.iter().any(|k| std::ffi::OsStr::new(k) == name) {
            // SAFETY: single-threaded, as the caller promises.
            unsafe { std::env::remove_var(&name) };
        }
    }
    for name in TEMP_VARIABLES {
        // SAFETY: as above.
        unsafe { std::env::set_var(name, private_tmp) };
    }
}
