//! Where a bundle keeps its payload: the zip archive appended to the
//! executable, then a trailer saying how long it is and what its SHA-256
//! is. A marker in the executable's read-only data says whether a payload
//! should follow, so that a bundle whose payload was stripped (`strip`,
//! `patchelf`, a truncated copy) is told from a plain ferrocorn.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Ends every bundle: `payload length (u64 LE) | SHA-256 | MAGIC`.
pub const MAGIC: &[u8; 8] = b"FRCBNDL1";
pub const TRAILER_LEN: u64 = 8 + 32 + 8;

/// The marker: its first [`MARK_PREFIX_LEN`] bytes find it in the file;
/// the rest says `plain` or `bundled`. Read through `black_box`, so the
/// compiler keeps reading the bytes the file holds rather than the ones
/// it was compiled with.
#[used]
static MARK: [u8; 32] = *b"ferrocorn-payload-mark:plain....";
pub const MARK_PREFIX_LEN: usize = 23;
pub const BUNDLED: &[u8; 9] = b"bundled..";

/// Whether this executable was made by `ferrocorn bundle`.
pub fn marked_as_bundle() -> bool {
    let mark: &[u8; 32] = std::hint::black_box(&MARK);
    mark[MARK_PREFIX_LEN..] == BUNDLED[..]
}

/// The marker's prefix, taken from the static itself (a second literal of
/// it in the binary would be found too).
pub fn mark_prefix() -> &'static [u8] {
    &std::hint::black_box(&MARK)[..MARK_PREFIX_LEN]
}

/// Where the payload lies in a bundle file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Bytes of the executable before the payload.
    pub executable_len: u64,
    pub payload_len: u64,
    pub sha256: [u8; 32],
}

/// Why a payload cannot be used.
#[derive(Debug)]
pub enum PayloadError {
    Io(io::Error),
    /// The marker says bundle, but no trailer ends the file.
    Missing,
    /// A trailer whose length does not fit the file.
    Truncated,
    /// The payload's SHA-256 is not the one recorded.
    Damaged,
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::Io(error) => write!(f, "cannot read the executable: {error}"),
            PayloadError::Missing => f.write_str(
                "this executable was made by `ferrocorn bundle` but its payload is gone (removed by strip or patchelf, or a truncated copy): copy the bundle again as it was made",
            ),
            PayloadError::Truncated => f.write_str(
                "this bundle's payload is cut short (a truncated copy?): copy the bundle again as it was made",
            ),
            PayloadError::Damaged => f.write_str(
                "this bundle's payload does not match its checksum (damaged or modified): copy the bundle again as it was made",
            ),
        }
    }
}

impl std::error::Error for PayloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PayloadError::Io(error) => Some(error),
            _ => None,
        }
    }
}

/// Reads the trailer at the end of `file`; `None` if there is none.
pub fn locate(file: &mut File) -> Result<Option<Located>, PayloadError> {
    let len = file.metadata().map_err(PayloadError::Io)?.len();
    if len < TRAILER_LEN {
        return Ok(None);
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(len - TRAILER_LEN))
        .and_then(|_| file.read_exact(&mut trailer))
        .map_err(PayloadError::Io)?;
    if &trailer[40..] != MAGIC {
        return Ok(None);
    }
    let payload_len = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
    let executable_len = len
        .checked_sub(TRAILER_LEN)
        .and_then(|n| n.checked_sub(payload_len))
        .ok_or(PayloadError::Truncated)?;
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(&trailer[8..40]);
    Ok(Some(Located {
        executable_len,
        payload_len,
        sha256,
    }))
}

/// The payload's bytes, checked against the recorded SHA-256.
pub fn read_verified(file: &mut File, at: &Located) -> Result<Vec<u8>, PayloadError> {
    let mut payload = vec![0u8; at.payload_len as usize];
    file.seek(SeekFrom::Start(at.executable_len))
        .and_then(|_| file.read_exact(&mut payload))
        .map_err(PayloadError::Io)?;
    if sha256(&payload) != at.sha256 {
        return Err(PayloadError::Damaged);
    }
    Ok(payload)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The trailer for `payload`.
pub fn trailer(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRAILER_LEN as usize);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&sha256(payload));
    out.extend_from_slice(MAGIC);
    out
}

/// `executable` with its marker set to `bundled`; `None` if it has none.
pub fn mark_bundled(mut executable: Vec<u8>) -> Option<Vec<u8>> {
    let prefix = mark_prefix();
    let at = memchr::memmem::find(&executable, prefix)?;
    let state = at + MARK_PREFIX_LEN;
    executable
        .get_mut(state..state + BUNDLED.len())?
        .copy_from_slice(BUNDLED);
    Some(executable)
}
