//! A TLS connection over a non-blocking socket, driven by the event loop:
//! reads and writes never block, the handshake advances as bytes arrive,
//! and records rustls could not write yet wait for the socket's next
//! writable event ([`TlsStream::send_pending`]). With `--proxy-protocol`,
//! the PROXY header a load balancer sends in the clear before the handshake
//! (HAProxy's `send-proxy`, an AWS NLB passing TLS through) is read first.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use crate::http::proxy_protocol::{self, ProxyHeader};

/// What the app learns of a TLS connection (mod_ssl's environ names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// `SSL_PROTOCOL`: `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// `SSL_CIPHER`: the suite's IANA name.
    pub cipher: &'static str,
    /// `SSL_CLIENT_CERT`: the verified client certificate, PEM.
    pub client_cert: Option<String>,
}

/// The answer to plain HTTP sent to a TLS port (as nginx gives one).
const PLAINTEXT_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 38\r\nConnection: close\r\n\r\nThis port speaks HTTPS, not plain HTTP\n";

/// The most bytes a PROXY header may take: version 2's 16-byte start and
/// its largest length field.
const MAX_PREAMBLE: usize = 16 + u16::MAX as usize;

/// The PROXY header that may come before the handshake.
enum Preamble {
    /// None is expected: the connection starts with the handshake.
    Off,
    /// Bytes read so far, not yet a whole header (or a handshake).
    Reading(Vec<u8>),
    /// What it held.
    Read(ProxyHeader),
}

pub struct TlsStream {
    socket: TcpStream,
    session: ServerConnection,
    preamble: Preamble,
    /// The first byte the client sent: a letter means plain HTTP (a TLS
    /// record starts with its content type, 0x16 for a handshake).
    first_byte: Option<u8>,
    close_notify_sent: bool,
}

impl TlsStream {
    /// `proxy_preamble`: a PROXY header may come before the handshake.
    pub fn new(
        socket: TcpStream,
        config: Arc<ServerConfig>,
        proxy_preamble: bool,
    ) -> Result<TlsStream, rustls::Error> {
        Ok(TlsStream {
            socket,
            session: ServerConnection::new(config)?,
            preamble: if proxy_preamble {
                Preamble::Reading(Vec::new())
            } else {
                Preamble::Off
            },
            first_byte: None,
            close_notify_sent: false,
        })
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// The PROXY header read before the handshake: `None` when none was
    /// expected, `Incomplete` until it (or the handshake) has begun.
    pub fn proxy_preamble(&self) -> Option<ProxyHeader> {
        match &self.preamble {
            Preamble::Off => None,
            Preamble::Reading(_) => Some(ProxyHeader::Incomplete),
            Preamble::Read(header) => Some(*header),
        }
    }

    /// The negotiated protocol and suite, and the client's certificate;
    /// `None` before the handshake has completed.
    pub fn facts(&self) -> Option<TlsFacts> {
        if self.session.is_handshaking() {
            return None;
        }
        let protocol = match self.session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            _ => "TLSv1.2",
        };
        let cipher = self
            .session
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or("");
        let client_cert = self
            .session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| pem("CERTIFICATE", der));
        Some(TlsFacts {
            protocol,
            cipher,
            client_cert,
        })
    }

    /// Writes the records rustls holds until the socket would block;
    /// `Ok(true)` once none is left.
    pub fn send_pending(&mut self) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Ends the sending side: close_notify (RFC 8446 §6.1), then the TCP
    /// shutdown once it is out. `Ok(false)`: call again when writable.
    pub fn close_write(&mut self) -> io::Result<bool> {
        if !self.close_notify_sent {
            self.session.send_close_notify();
            self.close_notify_sent = true;
        }
        if !self.send_pending()? {
            return Ok(false);
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
        Ok(true)
    }

    /// Reads what the socket has into rustls; `Ok(false)` at its end.
    fn receive(&mut self) -> io::Result<bool> {
        let read = if let Preamble::Reading(_) = self.preamble {
            self.receive_preamble()?
        } else {
            let mut source = FirstByte {
                socket: &mut self.socket,
                first_byte: &mut self.first_byte,
            };
            self.session.read_tls(&mut source)?
        };
        if let Err(error) = self.session.process_new_packets() {
            // rustls queued an alert saying why; plain HTTP gets an answer
            // it can show instead.
            if self.first_byte.is_some_and(|b| b.is_ascii_uppercase()) {
                let _ = self.socket.write(PLAINTEXT_REFUSAL);
            } else {
                let _ = self.send_pending();
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        // Handshake records; what the socket does not take now goes out on
        // its next writable event.
        self.send_pending()?;
        Ok(read > 0)
    }
}

impl Read for TlsStream {
    /// Plaintext as it arrives. `Ok(0)` at the end: the client's
    /// close_notify, or a close without one (a "ragged EOF", which
    /// Gunicorn's default `suppress_ragged_eofs` also treats as the end).
    /// `WouldBlock` only once the socket is drained, so an edge-triggered
    /// readiness event is never lost.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.receive() {
                Ok(true) => {}
                Ok(false) => {
                    return match self.session.reader().read(buf) {
                        Ok(n) => Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                        Err(e) => Err(e),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Takes plaintext only once earlier records are out, so the bytes
    /// held per connection stay within rustls's buffer limit (64 KiB).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.send_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let taken = self.session.writer().write_vectored(bufs)?;
        if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send_pending()?;
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending().map(drop)
    }
}

impl TlsStream {
    /// Reads toward the PROXY header; once it is whole (or the bytes are
    /// plainly no PROXY header), what follows it goes to rustls, to be
    /// processed as any bytes read ([`TlsStream::receive`]: plain HTTP
    /// still gets its refusal). Returns the bytes read from the socket (0 at
    /// its end).
    fn receive_preamble(&mut self) -> io::Result<usize> {
        let Preamble::Reading(buffer) = &mut self.preamble else {
            return Ok(0);
        };
        let mut chunk = [0u8; 4096];
        let read = self.socket.read(&mut chunk)?;
        if read == 0 && buffer.is_empty() {
            return Ok(0);
        }
        buffer.extend_from_slice(&chunk[..read]);
        let header = match proxy_protocol::parse(buffer) {
            Ok(ProxyHeader::Incomplete) if read > 0 && buffer.len() <= MAX_PREAMBLE => {
                return Ok(read);
            }
            Ok(ProxyHeader::Incomplete) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the connection ended inside its PROXY header",
                ));
            }
            Ok(header) => header,
            Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error)),
        };
        let taken = match header {
            ProxyHeader::Present { len, .. } => len,
            ProxyHeader::Absent | ProxyHeader::Incomplete => 0,
        };
        let rest = buffer.split_off(taken);
        self.preamble = Preamble::Read(header);
        self.first_byte = rest.first().copied();
        // At most one read's worth (4 KiB): rustls takes a whole record
        // (16 KiB) before it needs processing.
        let mut rest = &rest[..];
        while !rest.is_empty() {
            if self.session.read_tls(&mut rest)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "rustls took none of the bytes after the PROXY header",
                ));
            }
        }
        Ok(read)
    }
}

/// The socket, noting the first byte received.
struct FirstByte<'a> {
    socket: &'a mut TcpStream,
    first_byte: &'a mut Option<u8>,
}

impl Read for FirstByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        if self.first_byte.is_none() && n > 0 {
            *self.first_byte = Some(buf[0]);
        }
        Ok(n)
    }
}

/// `der` as a PEM block with `label` (RFC 7468).
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                base64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                base64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_is_base64_in_lines_of_64() {
        assert_eq!(
            pem("X", b"Man"),
            "-----BEGIN X-----\nTWFu\n-----END X-----\n"
        );
        assert_eq!(
            pem("X", b"Ma"),
            "-----BEGIN X-----\nTWE=\n-----END X-----\n"
        );
        assert_eq!(pem("X", b"M"), "-----BEGIN X-----\nTQ==\n-----END X-----\n");
        let long = pem("CERTIFICATE", &[0xff; 60]);
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2], "/".repeat(16));
    }
}
