//! Dropping every Linux capability (capabilities(7)): a worker running as
//! root keeps uid 0 but loses the powers that bypass file permissions,
//! bind raw sockets or administer the system, and can never regain them.

use super::SandboxError;

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): 64-bit sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Clears the calling thread's bounding, ambient, effective, permitted and
/// inheritable sets (threads and programs it starts inherit the result).
pub fn drop_all() -> Result<(), SandboxError> {
    let failed = |what: &str| {
        SandboxError::Setup(format!(
            "dropping capabilities ({what}): {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: prctl with integer arguments only. The bounding set goes first,
    // while CAP_SETPCAP (if held) still permits it; EINVAL ends the list of
    // capabilities this kernel knows.
    unsafe {
        for capability in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_READ, capability, 0, 0, 0) < 0 {
                break;
            }
            if libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) != 0
                && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
            {
                return Err(failed("bounding set"));
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
            && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
        {
            return Err(failed("ambient set"));
        }
    }
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let empty = [CapData::default(); 2];
    // SAFETY: capset(2) reads a version-3 header and two data words, both
    // valid for the call; pid 0 is the calling thread.
    let result = unsafe { libc::syscall(libc::SYS_capset, &mut header, empty.as_ptr()) };
    if result != 0 {
        return Err(failed("capset"));
    }
    Ok(())
}
