//! Access log lines in Gunicorn's `--access-logformat` language: `%(h)s`
//! style atoms, compiled once, rendered per request.

use std::time::Duration;

use crate::http::date::UtcTime;
use crate::http::head::RequestHead;

/// Gunicorn's default format.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A one-letter atom such as `h` or `s`.
    Atom(char),
    /// `%({name}i)s`: a request header.
    RequestHeader(String),
    /// `%({name}o)s`: a response header.
    ResponseHeader(String),
}

/// A compiled `--access-logformat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFormat {
    pieces: Vec<Piece>,
}

/// What one request and its response leave for the log.
pub struct AccessRecord<'a> {
    pub remote_addr: &'a str,
    pub head: &'a RequestHead,
    /// The status line the app gave, e.g. `200 OK`.
    pub status: &'a str,
    pub response_headers: &'a [(String, Vec<u8>)],
    pub body_bytes: u64,
    pub finished: UtcTime,
    pub duration: Duration,
}

const ATOMS: &str = "hlutrsmUqHbBfaTDMLp";

impl std::str::FromStr for AccessFormat {
    type Err = String;

    fn from_str(format: &str) -> Result<AccessFormat, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = format;
        while let Some(start) = rest.find("%(") {
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find(")s")
                .ok_or_else(|| format!("unterminated atom in access log format {format:?}"))?;
            let name = &after[..end];
            let piece = if let Some(header) =
                name.strip_prefix('{').and_then(|n| n.strip_suffix("}i"))
            {
                Piece::RequestHeader(header.to_ascii_lowercase())
            } else if let Some(header) = name.strip_prefix('{').and_then(|n| n.strip_suffix("}o")) {
                Piece::ResponseHeader(header.to_ascii_lowercase())
            } else if name.len() == 1 && ATOMS.contains(name) {
                Piece::Atom(name.chars().next().unwrap_or('-'))
            } else {
                return Err(format!("unknown access log atom %({name})s"));
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
            rest = &after[end + 2..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(AccessFormat { pieces })
    }
}

impl AccessFormat {
    pub(crate) fn render(&self, record: &AccessRecord<'_>) -> String {
        let mut line = String::with_capacity(160);
        let head = record.head;
        let request_header = |name: &str| {
            head.field(name.as_bytes())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => line.push_str(text),
                Piece::RequestHeader(name) => {
                    line.push_str(&request_header(name).unwrap_or_else(|| "-".into()))
                }
                Piece::ResponseHeader(name) => {
                    let value = record
                        .response_headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.iter().map(|&b| b as char).collect::<String>());
                    line.push_str(&value.unwrap_or_else(|| "-".into()));
                }
                Piece::Atom(atom) => {
                    let value = match atom {
                        'h' => record.remote_addr.to_owned(),
                        'l' | 'u' => "-".to_owned(),
                        't' => format!("[{}]", access_time(&record.finished)),
                        'r' => format!(
                            "{} {} {}",
                            head.method(),
                            String::from_utf8_lossy(head.target_bytes()),
                            head.version.as_str()
                        ),
                        's' => record.status.get(..3).unwrap_or("-").to_owned(),
                        'm' => head.method().to_owned(),
                        'U' => String::from_utf8_lossy(head.path()).into_owned(),
                        'q' => String::from_utf8_lossy(head.query()).into_owned(),
                        'H' => head.version.as_str().to_owned(),
                        'b' if record.body_bytes == 0 => "-".to_owned(),
                        'b' | 'B' => record.body_bytes.to_string(),
                        'f' => request_header("referer").unwrap_or_else(|| "-".into()),
                        'a' => request_header("user-agent").unwrap_or_else(|| "-".into()),
                        'T' => record.duration.as_secs().to_string(),
                        'D' => record.duration.as_micros().to_string(),
                        'M' => record.duration.as_millis().to_string(),
                        'L' => format!("{:.6}", record.duration.as_secs_f64()),
                        'p' => format!("<{}>", std::process::id()),
                        _ => "-".to_owned(),
                    };
                    line.push_str(&value);
                }
            }
        }
        line
    }
}

/// `22/Nov/2026:08:20:00 +0000`, the Common Log Format time.
fn access_time(time: &UtcTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        time.day,
        MONTHS[time.month as usize - 1],
        time.year,
        time.hour,
        time.minute,
        time.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::parse_complete_head;

    fn head(bytes: &[u8]) -> RequestHead {
        parse_complete_head(bytes)
    }

    #[test]
    fn renders_the_default_format() {
        let head = head(b"GET /a?b=1 HTTP/1.1\r\nUser-Agent: curl\r\nReferer: http://r/\r\n\r\n");
        let record = AccessRecord {
            remote_addr: "127.0.0.1",
            head: &head,
            status: "200 OK",
            response_headers: &[("X-Id".into(), b"7".to_vec())],
            body_bytes: 12,
            finished: UtcTime::from_unix(784_111_777),
            duration: Duration::from_micros(1500),
        };
        let format: AccessFormat = DEFAULT_FORMAT.parse().unwrap();
        assert_eq!(
            format.render(&record),
            r#"127.0.0.1 - - [06/Nov/1994:08:49:37 +0000] "GET /a?b=1 HTTP/1.1" 200 12 "http://r/" "curl""#
        );
        let custom: AccessFormat =
            "%(D)s %(L)s %({user-agent}i)s %({x-id}o)s %({missing}i)s %(m)s %(U)s %(q)s"
                .parse()
                .unwrap();
        assert_eq!(custom.render(&record), "1500 0.001500 curl 7 - GET /a b=1");
    }

    #[test]
    fn unknown_atoms_are_refused() {
        assert!("%(z)s".parse::<AccessFormat>().is_err());
        assert!("%(h".parse::<AccessFormat>().is_err());
    }
}
