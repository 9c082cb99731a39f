//! `--max-worker-memory`: the soft limit (resident memory, checked after each
//! request; above it the worker retires gracefully) and the kernel's hard
//! ceiling (RLIMIT_DATA at twice the limit: allocations past it fail).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The worker's resident set size, read from `/proc/self/statm` through a
/// descriptor opened before the sandbox closes `/proc`.
pub struct ResidentMemory {
    statm: File,
    page_size: u64,
}

impl ResidentMemory {
    pub fn open() -> io::Result<ResidentMemory> {
        Self::open_path("/proc/self/statm")
    }

    /// Another process's (the arbiter reads its workers' for `/metrics`).
    pub fn of_process(pid: libc::pid_t) -> io::Result<ResidentMemory> {
        Self::open_path(&format!("/proc/{pid}/statm"))
    }

    fn open_path(path: &str) -> io::Result<ResidentMemory> {
        // SAFETY: sysconf only reads a configuration value.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        Ok(ResidentMemory {
            statm: File::open(path)?,
            page_size,
        })
    }

    /// Resident bytes now (the second field of statm, in pages).
    pub fn bytes(&self) -> io::Result<u64> {
        let mut text = [0u8; 128];
        // proc files regenerate their text on every read from offset 0.
        let n = self.statm.read_at(&mut text, 0)?;
        let pages = std::str::from_utf8(&text[..n])
            .ok()
            .and_then(|t| t.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u64>().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable statm"))?;
        Ok(pages * self.page_size)
    }
}

/// The process's data size as RLIMIT_DATA counts it (`VmData`).
pub fn data_in_use() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmData:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmData in /proc/self/status"))
}

/// Sets RLIMIT_DATA (private writable memory: the heap, anonymous mappings,
/// thread stacks) soft and hard to `bytes`: lowering the hard limit cannot
/// be undone without CAP_SYS_RESOURCE, and under `--sandbox` not at all.
pub fn set_data_ceiling(bytes: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads one rlimit struct, valid for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_grows_when_pages_are_touched() {
        let memory = ResidentMemory::open().unwrap();
        let before = memory.bytes().unwrap();
        assert!(before > 0);
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = memory.bytes().unwrap();
        assert!(after >= before + (32 << 20), "{before} -> {after}");
        drop(std::hint::black_box(block));
    }
}
