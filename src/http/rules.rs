//! The rule types the request parsers share: which HTTP version a message
//! speaks, and what a head may be (sizes and Gunicorn's leniencies). The
//! head, framing, leniency and body parsers all import them from here, so
//! none of them depends on another for its types.

impl HeadRules {
    /// Longest header line without its CRLF.
    pub fn max_field_line(&self) -> usize {
        self.field_size.saturating_sub(2)
    }
}

/// What a request head may be: Gunicorn's `limit_request_*` sizes and its
/// parser leniencies (all off by default).
#[derive(Debug, Clone, Copy)]
pub struct HeadRules {
    /// Longest request line in bytes, CRLF not counted.
    pub request_line: usize,
    /// Most header fields.
    pub fields: usize,
    /// Longest header line in bytes, its CRLF counted (as Gunicorn counts it).
    pub field_size: usize,
    /// Largest body in bytes.
    pub body: u64,
    /// Leniencies for clients that break the grammar (Gunicorn's settings).
    pub leniency: Leniency,
}

/// Gunicorn's parser leniencies; each is off by default, where the strict
/// rule applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leniency {
    /// `strip_header_spaces`: accept whitespace between a field name and its
    /// colon (RFC 9112 §5.1 says reject) and strip it.
    pub strip_header_spaces: bool,
    /// `permit_unconventional_http_method`: any token as a method, also with
    /// lower-case letters or `#`, of any length.
    pub permit_unconventional_method: bool,
    /// `casefold_http_method`: upper-case the method before the app sees it.
    pub casefold_method: bool,
    /// `permit_obsolete_folding`: join obs-fold continuation lines to the
    /// field value with one space (RFC 9112 §5.2) instead of rejecting.
    pub permit_obsolete_folding: bool,
    /// `header_map`: what to do with field names containing `_`.
    pub underscore_headers: UnderscoreHeaders,
}

/// Field names with `_` collide with `-` names in the environ (`HTTP_X_A`):
/// Gunicorn's `header_map` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UnderscoreHeaders {
    /// Leave them out of the environ (Gunicorn's default).
    #[default]
    Drop,
    /// Refuse the request with 400.
    Refuse,
    /// Pass them to the app, where they may shadow a `-` field.
    Dangerous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}
