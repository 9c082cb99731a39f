//! Tables in memory shared between the arbiter and its forked workers: mapped
//! `MAP_SHARED` before forking, so every process sees the same atomics.

/// Maps `count` zeroed `T`s shared with future children; never unmapped (the
/// tables live as long as the process).
///
/// # Safety
/// The all-zero bit pattern must be a valid `T`, and `T` must be safe to share
/// between processes (plain atomics, `repr(C)`).
pub unsafe fn map_zeroed<T>(count: usize) -> std::io::Result<&'static [T]> {
    let bytes = count * std::mem::size_of::<T>();
    // SAFETY: an anonymous shared mapping of `bytes` zeroed bytes, page
    // aligned (enough for any atomic); the caller vouches that zeroed memory
    // is a valid `T`, and the mapping is never unmapped.
    unsafe {
        let pointer = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if pointer == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(std::slice::from_raw_parts(pointer as *const T, count))
    }
}
