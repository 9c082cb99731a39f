//! The cryptography behind the app's `ssl` module: RustPython's rustls-based
//! `_ssl` with the same `ring` provider ferrocorn's own TLS uses, so the
//! binary carries one TLS stack. Certificates come from the host's store
//! (`SSL_CERT_FILE`, `SSL_CERT_DIR`, `/etc/ssl/certs`...) and, on a host
//! without one, from Mozilla's roots compiled in (webpki-roots).

use std::sync::Once;

use rustls::crypto::ring;
use rustpython_stdlib::ssl::providers::CryptoExt;

/// Makes `ring` the process's rustls provider for `_ssl`; every interpreter
/// calls it before it starts, and only the first call does anything. It
/// costs an allocation: certificates are read when the app asks for them.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let extension = CryptoExt {
            all_cipher_suites: Some(ring::ALL_CIPHER_SUITES),
            default_cipher_suites: Some(ring::DEFAULT_CIPHER_SUITES),
            all_kx_groups: Some(ring::ALL_KX_GROUPS),
            any_supported_key: Some(ring::sign::any_supported_type),
            ticketer: ring::Ticketer::new,
        };
        // The only failure is a provider already installed by the program
        // that embeds ferrocorn; `_ssl` then uses that one.
        let _ = CryptoExt::set_provider(ring::default_provider(), extension);
    });
}
