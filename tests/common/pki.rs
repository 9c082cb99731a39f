//! Certificates for the TLS tests, made with openssl(1).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::scratch_dir;

/// A CA, a server certificate for localhost and 127.0.0.1 that it signed,
/// a client certificate it signed, and a client certificate of another CA.
pub struct Pki {
    pub dir: PathBuf,
}

pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl(1)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = scratch_dir(name);
        for ca in ["ca", "stranger"] {
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={ca}"),
                ],
            );
        }
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        let pki = Pki { dir };
        pki.issue("server", "ca", "rsa:2048", "1");
        pki.issue("client", "ca", "ec", "1");
        pki.issue("stranger-client", "stranger", "ec", "1");
        pki
    }

    /// Makes NAME.key and NAME.pem, signed by CA, valid for DAYS.
    pub fn issue(&self, name: &str, ca: &str, key: &str, days: &str) {
        let mut request = vec!["req", "-new", "-nodes", "-newkey", key];
        if key == "ec" {
            request.extend(["-pkeyopt", "ec_paramgen_curve:P-256"]);
        }
        let (keyfile, csr) = (format!("{name}.key"), format!("{name}.csr"));
        request.extend(["-keyout", &keyfile, "-out", &csr, "-subj", "/CN=localhost"]);
        openssl(&self.dir, &request);
        let (ca_pem, ca_key, cert) = (
            format!("{ca}.pem"),
            format!("{ca}.key"),
            format!("{name}.pem"),
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                days,
                "-extfile",
                "server.ext",
                "-out",
                &cert,
            ],
        );
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// The server flags for its certificate and key.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--certfile".into(),
            self.path("server.pem"),
            "--keyfile".into(),
            self.path("server.key"),
        ]
    }
}
