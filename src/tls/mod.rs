//! TLS on the TCP listeners (Gunicorn's `certfile`/`keyfile` settings):
//! the certificate files read and checked, the rustls configuration built
//! from them, and the stream the event loop drives without blocking.
//!
//! The arbiter builds the configuration before it forks workers (and again
//! on `HUP`), so a worker never reads the files: under `--sandbox` the app
//! cannot read the key.

pub mod ciphers;
mod stream;
mod validity;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use stream::{TlsFacts, TlsStream};

/// Gunicorn's `cert_reqs`: whether clients present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// `0`, `none`, `CERT_NONE`: none asked for.
    None,
    /// `1`, `optional`, `CERT_OPTIONAL`: asked for, verified if presented.
    Optional,
    /// `2`, `required`, `CERT_REQUIRED`: a verified certificate or no connection.
    Required,
}

impl std::str::FromStr for ClientCerts {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let name = value.trim().to_ascii_lowercase();
        match name
            .trim_start_matches("cert_")
            .trim_start_matches("verifymode.cert_")
        {
            "0" | "none" => Ok(ClientCerts::None),
            "1" | "optional" => Ok(ClientCerts::Optional),
            "2" | "required" => Ok(ClientCerts::Required),
            _ => Err(format!(
                "invalid cert_reqs {value:?}: expected 0/none, 1/optional or 2/required"
            )),
        }
    }
}

/// The lowest TLS version offered (`--ssl-protocol-min`); the highest is 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl std::str::FromStr for MinVersion {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let name = value.trim().to_ascii_lowercase().replace(['_', 'v'], ".");
        match name.trim_start_matches("tls").trim_start_matches('.') {
            "1.2" => Ok(MinVersion::Tls12),
            "1.3" => Ok(MinVersion::Tls13),
            _ => Err(format!(
                "invalid TLS version {value:?}: expected tls1.2 or tls1.3 (older ones are not offered)"
            )),
        }
    }
}

/// What the TLS settings name.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificate chain, PEM, the server's own certificate first.
    pub certfile: PathBuf,
    /// Its private key, PEM (the certificate file when it holds both).
    pub keyfile: PathBuf,
    /// The CAs client certificates are verified against.
    pub ca_certs: Option<PathBuf>,
    /// Whether clients present certificates.
    pub client_certs: ClientCerts,
    /// `--ciphers`: an OpenSSL cipher list.
    pub ciphers: Option<String>,
    /// The lowest version offered.
    pub min_version: MinVersion,
}

/// Why TLS cannot be set up; each names the file or setting at fault.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read (the path, why).
    Read(PathBuf, std::io::Error),
    /// A file is not the PEM it should be.
    Pem(PathBuf, String),
    /// The key file holds an encrypted key.
    EncryptedKey(PathBuf),
    /// The certificate is expired or not yet valid.
    Validity(PathBuf, String),
    /// The key is unusable or is not the certificate's.
    Key(PathBuf, String),
    /// A setting cannot be used (the message names it).
    Setting(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read(path, error) => write!(f, "cannot read {}: {error}", path.display()),
            TlsError::Pem(path, what) => write!(f, "{}: {what}", path.display()),
            TlsError::EncryptedKey(path) => write!(
                f,
                "{}: the private key is encrypted; ferrocorn reads unencrypted keys only (decrypt it with `openssl pkey -in KEY -out KEY.plain` and protect the file's permissions)",
                path.display()
            ),
            TlsError::Validity(path, what) => write!(f, "{}: {what}", path.display()),
            TlsError::Key(path, what) => write!(f, "{}: {what}", path.display()),
            TlsError::Setting(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read(_, error) => Some(error),
            _ => None,
        }
    }
}

/// The rustls configuration for `settings`, its files read and checked now.
/// `warn` receives what deserves a log line but not a refusal (suites of
/// `--ciphers` that rustls does not have).
pub fn server_config(
    settings: &TlsSettings,
    warn: &mut dyn FnMut(String),
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_chain(&settings.certfile)?;
    check_validity(&settings.certfile, &chain[0], now_seconds())?;
    let key = read_key(&settings.keyfile)?;
    let provider = Arc::new(provider(settings.ciphers.as_deref(), warn)?);
    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Setting(format!("--ciphers and --ssl-protocol-min: {e}")))?;
    let builder = match (settings.client_certs, &settings.ca_certs) {
        (ClientCerts::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(TlsError::Setting(
                "--cert-reqs optional or required needs --ca-certs (the CAs client certificates are verified against)"
                    .to_owned(),
            ));
        }
        (wanted, Some(ca_certs)) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_chain(ca_certs)? {
                roots.add(certificate).map_err(|e| {
                    TlsError::Pem(ca_certs.clone(), format!("not a CA certificate: {e}"))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match wanted {
                ClientCerts::Optional => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Pem(ca_certs.clone(), e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError::Key(
            settings.keyfile.clone(),
            key_problem(&e, &settings.certfile),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Session tickets the workers share (TLS 1.3 resumption, RFC 8446 §2.2):
    // the keys are made here, before the workers are forked, so a client may
    // resume with any of them. rustls's default, a per-process session
    // cache, only resumed on the worker that issued the ticket.
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| TlsError::Setting(format!("cannot make TLS session ticket keys: {e}")))?;
    Ok(Arc::new(config))
}

fn provider(
    ciphers: Option<&str>,
    warn: &mut dyn FnMut(String),
) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = ciphers {
        let selection = ciphers::select(list).map_err(TlsError::Setting)?;
        if !selection.unavailable.is_empty() {
            warn(format!(
                "--ciphers: skipping suites rustls does not offer: {}",
                selection.unavailable.join(":")
            ));
        }
        provider
            .cipher_suites
            .retain(|suite| selection.suites.contains(&suite.suite()));
    }
    Ok(provider)
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read(path.to_owned(), e))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(path.to_owned(), format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Pem(
            path.to_owned(),
            "no certificate in it (expected -----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(path)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::EncryptedKey(path.to_owned()));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        TlsError::Pem(
            path.to_owned(),
            format!("no private key in it (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })
}

fn key_problem(error: &rustls::Error, certfile: &Path) -> String {
    match error {
        rustls::Error::InconsistentKeys(_) => format!(
            "the private key does not belong to the certificate in {}",
            certfile.display()
        ),
        other => format!("unusable private key: {other}"),
    }
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Refuses a server certificate outside its validity period at `now`.
fn check_validity(path: &Path, certificate: &[u8], now: i64) -> Result<(), TlsError> {
    let Some(validity) = validity::validity(certificate) else {
        return Err(TlsError::Pem(
            path.to_owned(),
            "the first certificate is not an X.509 certificate".to_owned(),
        ));
    };
    let date = |seconds: i64| {
        let t = crate::http::date::UtcTime::from_unix(seconds);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    };
    if now > validity.not_after {
        return Err(TlsError::Validity(
            path.to_owned(),
            format!("the certificate expired on {}", date(validity.not_after)),
        ));
    }
    if now < validity.not_before {
        return Err(TlsError::Validity(
            path.to_owned(),
            format!(
                "the certificate is not valid before {}",
                date(validity.not_before)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorns_cert_reqs_forms_are_understood() {
        for (value, expected) in [
            ("0", ClientCerts::None),
            ("none", ClientCerts::None),
            ("CERT_NONE", ClientCerts::None),
            ("1", ClientCerts::Optional),
            ("VerifyMode.CERT_OPTIONAL", ClientCerts::Optional),
            ("2", ClientCerts::Required),
            ("required", ClientCerts::Required),
        ] {
            assert_eq!(value.parse(), Ok(expected), "{value}");
        }
        assert!("3".parse::<ClientCerts>().is_err());
    }

    #[test]
    fn protocol_versions_are_named_as_granian_and_openssl_do() {
        for value in ["tls1.2", "TLSv1.2", "TLSv1_2", "1.2"] {
            assert_eq!(value.parse(), Ok(MinVersion::Tls12), "{value}");
        }
        assert_eq!("tls1.3".parse(), Ok(MinVersion::Tls13));
        let old = "tls1.1".parse::<MinVersion>().unwrap_err();
        assert!(old.contains("older ones are not offered"), "{old}");
    }
}
