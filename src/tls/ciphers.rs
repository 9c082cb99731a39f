//! `--ciphers`: an OpenSSL cipher list (Gunicorn passes it to
//! `SSLContext.set_ciphers`) mapped onto the suites rustls offers.
//!
//! As in OpenSSL, the list is `:`-separated (`,` and spaces too); an entry is
//! a suite name (OpenSSL's or IANA's) or `+`-joined tags (`ECDHE+AESGCM`),
//! prefixed by `!` or `-` to remove what it matches. And as with OpenSSL's
//! `set_ciphers`, the list governs TLS 1.2: the TLS 1.3 suites all stay on
//! unless it names some of them.

use rustls::CipherSuite;

/// A suite rustls's ring provider offers, with its names and the OpenSSL
/// tags that select it.
struct Suite {
    id: CipherSuite,
    openssl: &'static str,
    iana: &'static str,
    tags: &'static [&'static str],
}

const TLS12_TAGS: &[&str] = &[
    "ALL", "DEFAULT", "HIGH", "TLSv1.2", "AEAD", "ECDHE", "EECDH", "kECDHE", "kEECDH",
];

const SUITES: &[Suite] = &[
    Suite {
        id: CipherSuite::TLS13_AES_256_GCM_SHA384,
        openssl: "TLS_AES_256_GCM_SHA384",
        iana: "TLS_AES_256_GCM_SHA384",
        tags: &[],
    },
    Suite {
        id: CipherSuite::TLS13_AES_128_GCM_SHA256,
        openssl: "TLS_AES_128_GCM_SHA256",
        iana: "TLS_AES_128_GCM_SHA256",
        tags: &[],
    },
    Suite {
        id: CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        openssl: "TLS_CHACHA20_POLY1305_SHA256",
        iana: "TLS_CHACHA20_POLY1305_SHA256",
        tags: &[],
    },
    Suite {
        id: CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
        iana: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        tags: &["aECDSA", "ECDSA", "AESGCM", "AES", "AES256", "SHA384"],
    },
    Suite {
        id: CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
        iana: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        tags: &["aECDSA", "ECDSA", "AESGCM", "AES", "AES128", "SHA256"],
    },
    Suite {
        id: CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
        iana: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        tags: &["aECDSA", "ECDSA", "CHACHA20", "SHA256"],
    },
    Suite {
        id: CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
        iana: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        tags: &["aRSA", "RSA", "AESGCM", "AES", "AES256", "SHA384"],
    },
    Suite {
        id: CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
        iana: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        tags: &["aRSA", "RSA", "AESGCM", "AES", "AES128", "SHA256"],
    },
    Suite {
        id: CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
        iana: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        tags: &["aRSA", "RSA", "CHACHA20", "SHA256"],
    },
];

/// OpenSSL tags that select only suites rustls never offers (no forward
/// secrecy, no AEAD, broken ciphers): removing them changes nothing, and
/// adding them adds nothing.
const NEVER_OFFERED: &[&str] = &[
    "aNULL",
    "eNULL",
    "NULL",
    "COMPLEMENTOFALL",
    "COMPLEMENTOFDEFAULT",
    "MD5",
    "RC4",
    "DES",
    "3DES",
    "EXPORT",
    "EXP",
    "LOW",
    "MEDIUM",
    "DSS",
    "aDSS",
    "PSK",
    "aPSK",
    "kPSK",
    "SRP",
    "kSRP",
    "CAMELLIA",
    "SEED",
    "IDEA",
    "ARIA",
    "ADH",
    "AECDH",
    "kRSA",
    "DH",
    "DHE",
    "EDH",
    "kDHE",
    "kEDH",
    "SHA1",
    "SHA",
    "AESCCM",
    "AESCCM8",
    "CBC",
    "RC2",
    "GOST",
];

/// What a `--ciphers` list selects.
#[derive(Debug, PartialEq, Eq)]
pub struct Selection {
    /// The suites to offer, TLS 1.3 ones first, in rustls's order.
    pub suites: Vec<CipherSuite>,
    /// Suite names in the list that rustls does not have (skipped).
    pub unavailable: Vec<String>,
}

/// Maps `list` onto rustls's suites; an entry that is neither a suite name
/// nor an OpenSSL tag, or a list that leaves no TLS 1.2 or 1.3 suite, is
/// refused with a reason.
pub fn select(list: &str) -> Result<Selection, String> {
    let mut chosen: Vec<CipherSuite> = Vec::new();
    let mut banned: Vec<CipherSuite> = Vec::new();
    let mut unavailable = Vec::new();
    let mut names_tls13 = false;
    for entry in list.split([':', ',', ' ']).filter(|e| !e.is_empty()) {
        let (remove, ban, body) = match entry.as_bytes()[0] {
            b'!' => (true, true, &entry[1..]),
            b'-' => (true, false, &entry[1..]),
            b'+' => (false, false, &entry[1..]),
            _ => (false, false, entry),
        };
        if body.starts_with('@') {
            continue; // @STRENGTH, @SECLEVEL=n: ordering and levels, not suites.
        }
        let matched = matching(body).ok_or_else(|| {
            format!("--ciphers: {entry:?} is neither a cipher suite nor an OpenSSL cipher string")
        })?;
        if matched.is_empty() && is_suite_name(body) && !remove {
            unavailable.push(body.to_owned());
        }
        for id in matched {
            if is_tls13(id) {
                names_tls13 |= !remove;
            }
            if remove {
                chosen.retain(|c| *c != id);
                if ban {
                    banned.push(id);
                }
            } else if !chosen.contains(&id) && !banned.contains(&id) {
                chosen.push(id);
            }
        }
    }
    if !names_tls13 {
        let tls13 = SUITES.iter().map(|s| s.id).filter(|id| is_tls13(*id));
        chosen.extend(tls13.filter(|id| !banned.contains(id)));
    }
    let suites: Vec<CipherSuite> = SUITES
        .iter()
        .map(|s| s.id)
        .filter(|id| chosen.contains(id))
        .collect();
    if !suites.iter().any(|id| !is_tls13(*id)) && !names_tls13 {
        return Err(format!(
            "--ciphers {list:?} leaves no TLS 1.2 cipher suite rustls offers (it has: {})",
            SUITES
                .iter()
                .filter(|s| !is_tls13(s.id))
                .map(|s| s.openssl)
                .collect::<Vec<_>>()
                .join(":")
        ));
    }
    Ok(Selection {
        suites,
        unavailable,
    })
}

fn is_tls13(id: CipherSuite) -> bool {
    SUITES
        .iter()
        .find(|s| s.id == id)
        .is_some_and(|s| s.tags.is_empty())
}

/// The suites `body` (a name, or `+`-joined tags) selects; `None` if it is
/// not something OpenSSL would take.
fn matching(body: &str) -> Option<Vec<CipherSuite>> {
    if let Some(suite) = SUITES
        .iter()
        .find(|s| s.openssl.eq_ignore_ascii_case(body) || s.iana.eq_ignore_ascii_case(body))
    {
        return Some(vec![suite.id]);
    }
    if is_suite_name(body) {
        return Some(Vec::new());
    }
    let tags: Vec<&str> = body.split('+').collect();
    let mut selected = Vec::new();
    for tag in &tags {
        let known = NEVER_OFFERED.contains(tag)
            || TLS12_TAGS.contains(tag)
            || SUITES.iter().any(|s| s.tags.contains(tag));
        if !known {
            return None;
        }
    }
    for suite in SUITES.iter().filter(|s| !s.tags.is_empty()) {
        let has = |tag: &&str| TLS12_TAGS.contains(tag) || suite.tags.contains(tag);
        if tags.iter().all(has) {
            selected.push(suite.id);
        }
    }
    Some(selected)
}

/// Whether `body` is shaped like a suite name (`AES128-SHA`,
/// `DHE-RSA-AES256-GCM-SHA384`, `TLS_RSA_WITH_AES_128_CBC_SHA`) rather than a
/// tag: OpenSSL has many that rustls does not.
fn is_suite_name(body: &str) -> bool {
    let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    (body.contains('-') && body.chars().all(|c| upper(c) || c == '-'))
        || (body.starts_with("TLS_") && body.chars().all(|c| upper(c) || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<&'static str> {
        let selection = select(list).unwrap();
        selection
            .suites
            .iter()
            .map(|id| SUITES.iter().find(|s| s.id == *id).unwrap().openssl)
            .collect()
    }

    const TLS13: [&str; 3] = [
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ];

    #[test]
    fn names_select_tls12_suites_and_tls13_stays_on() {
        let chosen = names("ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
        let mut expected = TLS13.to_vec();
        expected.extend([
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ]);
        assert_eq!(chosen, expected);
    }

    #[test]
    fn naming_a_tls13_suite_limits_tls13_to_those_named() {
        assert_eq!(
            names("TLS_AES_128_GCM_SHA256:ECDHE-RSA-CHACHA20-POLY1305"),
            ["TLS_AES_128_GCM_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"]
        );
    }

    #[test]
    fn tags_combine_and_exclusions_hold() {
        let chosen = names("ECDHE+AESGCM:!aNULL:!MD5:!ECDSA");
        assert_eq!(
            &chosen[3..],
            ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"]
        );
        let high = names("HIGH:!CHACHA20:@STRENGTH");
        assert_eq!(high.len(), 3 + 4);
        assert!(!high[3..].iter().any(|n| n.contains("CHACHA20")));
    }

    #[test]
    fn mozillas_intermediate_list_keeps_what_rustls_has_and_reports_the_rest() {
        let list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
        let selection = select(list).unwrap();
        assert_eq!(selection.suites.len(), 3 + 6);
        assert_eq!(
            selection.unavailable,
            ["DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384"]
        );
    }

    #[test]
    fn unknown_entries_and_lists_left_without_a_tls12_suite_are_refused() {
        let unknown = select("ECDHE-RSA-AES128-GCM-SHA256:BOGUS").unwrap_err();
        assert!(unknown.contains("\"BOGUS\""), "{unknown}");
        let none = select("AES256-SHA:RC4").unwrap_err();
        assert!(none.contains("leaves no TLS 1.2 cipher suite"), "{none}");
        assert!(select("HIGH:!HIGH").is_err());
    }
}
