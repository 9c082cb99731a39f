//! Building the WSGI environ (PEP 3333) for a request: a per-interpreter
//! template holding what never changes, copied and filled per request.

use std::borrow::Cow;
use std::collections::HashMap;

use rustpython_vm::builtins::{PyDictRef, PyStr, PyStrInterned, PyStrRef};
use rustpython_vm::{PyObjectRef, PyPayload, PyResult, VirtualMachine};

use crate::http::body::RequestBody;
use crate::http::framing::BodyFraming;
use crate::http::head::RequestHead;
use crate::http::rules::Version;
use crate::http::target::percent_decode;
use crate::net::peer::ConnectionInfo;
use crate::tls::TlsFacts;

use super::input::Input;

/// What every environ of this server has in common.
#[derive(Clone)]
pub struct EnvironSettings {
    pub url_scheme: &'static str,
    pub multiprocess: bool,
    pub script_name: String,
}

/// Environ keys, interned once per interpreter (hashes computed once).
struct Keys {
    request_method: &'static PyStrInterned,
    path_info: &'static PyStrInterned,
    query_string: &'static PyStrInterned,
    raw_uri: &'static PyStrInterned,
    server_protocol: &'static PyStrInterned,
    server_name: &'static PyStrInterned,
    server_port: &'static PyStrInterned,
    remote_addr: &'static PyStrInterned,
    remote_port: &'static PyStrInterned,
    content_type: &'static PyStrInterned,
    content_length: &'static PyStrInterned,
    wsgi_input: &'static PyStrInterned,
    url_scheme: &'static PyStrInterned,
}

/// Header names seen most often, whose `HTTP_*` keys are cached without limit;
/// other names are cached up to [`HEADER_KEY_CACHE`] entries per interpreter.
const HEADER_KEY_CACHE: usize = 256;

pub struct EnvironBuilder {
    template: PyDictRef,
    keys: Keys,
    http10: PyStrRef,
    http11: PyStrRef,
    https: PyStrRef,
    root_path: String,
    methods: HashMap<&'static str, PyStrRef>,
    header_keys: std::cell::RefCell<HashMap<Vec<u8>, PyStrRef>>,
}

impl EnvironBuilder {
    pub fn new(
        vm: &VirtualMachine,
        settings: &EnvironSettings,
        errors: PyObjectRef,
        file_wrapper: PyObjectRef,
    ) -> PyResult<EnvironBuilder> {
        let ctx = &vm.ctx;
        let template = ctx.new_dict();
        let version = ctx.new_tuple(vec![ctx.new_int(1).into(), ctx.new_int(0).into()]);
        template.set_item("wsgi.version", version.into(), vm)?;
        template.set_item(
            "wsgi.url_scheme",
            ctx.new_str(settings.url_scheme).into(),
            vm,
        )?;
        template.set_item("wsgi.errors", errors, vm)?;
        // Each interpreter thread has its own copy of the app: nothing in it
        // is ever called from two threads at once.
        template.set_item("wsgi.multithread", ctx.new_bool(false).into(), vm)?;
        template.set_item(
            "wsgi.multiprocess",
            ctx.new_bool(settings.multiprocess).into(),
            vm,
        )?;
        template.set_item("wsgi.run_once", ctx.new_bool(false).into(), vm)?;
        template.set_item("wsgi.file_wrapper", file_wrapper, vm)?;
        // The body is received whole before the app runs: reading to EOF is safe.
        template.set_item("wsgi.input_terminated", ctx.new_bool(true).into(), vm)?;
        template.set_item(
            "SCRIPT_NAME",
            ctx.new_str(settings.script_name.as_str()).into(),
            vm,
        )?;
        let intern = |s: &'static str| ctx.intern_str(s);
        let keys = Keys {
            request_method: intern("REQUEST_METHOD"),
            path_info: intern("PATH_INFO"),
            query_string: intern("QUERY_STRING"),
            raw_uri: intern("RAW_URI"),
            server_protocol: intern("SERVER_PROTOCOL"),
            server_name: intern("SERVER_NAME"),
            server_port: intern("SERVER_PORT"),
            remote_addr: intern("REMOTE_ADDR"),
            remote_port: intern("REMOTE_PORT"),
            content_type: intern("CONTENT_TYPE"),
            content_length: intern("CONTENT_LENGTH"),
            wsgi_input: intern("wsgi.input"),
            url_scheme: intern("wsgi.url_scheme"),
        };
        let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
            .into_iter()
            .map(|m| (m, ctx.new_str(m)))
            .collect();
        Ok(EnvironBuilder {
            template,
            keys,
            http10: ctx.new_str("HTTP/1.0"),
            http11: ctx.new_str("HTTP/1.1"),
            https: ctx.new_str("https"),
            root_path: settings.script_name.clone(),
            methods,
            header_keys: Default::default(),
        })
    }

    pub fn build(
        &self,
        vm: &VirtualMachine,
        head: &RequestHead,
        body: RequestBody,
        info: &ConnectionInfo,
    ) -> PyResult<PyDictRef> {
        let environ = self.template.copy().into_ref(&vm.ctx);
        let keys = &self.keys;
        let set = |key: &PyStrInterned, value: PyObjectRef| environ.set_item(key, value, vm);
        let text = |bytes: &[u8]| -> PyObjectRef { vm.ctx.new_str(latin1(bytes)).into() };

        let method = match self.methods.get(head.method()) {
            Some(interned) => interned.clone(),
            None => vm.ctx.new_str(head.method()),
        };
        set(keys.request_method, method.into())?;
        let path = percent_decode(head.path());
        set(keys.path_info, text(self.strip_root_path(&path)))?;
        set(keys.query_string, text(head.query()))?;
        set(keys.raw_uri, text(head.target_bytes()))?;
        let protocol = if head.version == Version::Http11 {
            &self.http11
        } else {
            &self.http10
        };
        set(keys.server_protocol, protocol.clone().into())?;
        let (server_name, server_port) = match head.authority() {
            Some(authority) => split_authority(authority),
            None => (
                info.server_name.as_bytes().into(),
                info.server_port.as_bytes().into(),
            ),
        };
        set(keys.server_name, text(&server_name))?;
        set(keys.server_port, text(&server_port))?;
        set(keys.remote_addr, vm.ctx.new_str(&*info.remote_addr).into())?;
        set(keys.remote_port, vm.ctx.new_str(&*info.remote_port).into())?;
        if info.https {
            set(keys.url_scheme, self.https.clone().into())?;
        }
        if let Some(tls) = &info.tls {
            set_tls(vm, &environ, tls)?;
        }
        if head.framing == BodyFraming::Chunked {
            // The body was decoded on arrival; its length is now known.
            set(
                keys.content_length,
                vm.ctx.new_str(body.len().to_string()).into(),
            )?;
        }
        self.set_fields(vm, &environ, head)?;
        set(keys.wsgi_input, Input::new(body).into_ref(&vm.ctx).into())?;
        Ok(environ)
    }

    /// PATH_INFO below the root path: `/app/x` is `/x` under `/app` (a path
    /// outside it is left whole, as the proxy may route more than the app).
    fn strip_root_path<'p>(&self, path: &'p [u8]) -> &'p [u8] {
        let root = self.root_path.as_bytes();
        if root.is_empty() {
            return path;
        }
        match path.strip_prefix(root) {
            Some(rest) if rest.is_empty() || rest.starts_with(b"/") => rest,
            _ => path,
        }
    }

    /// CONTENT_TYPE, CONTENT_LENGTH and an `HTTP_*` key per field name, the
    /// values of repeated fields joined with "," (RFC 9110 §5.3).
    fn set_fields(
        &self,
        vm: &VirtualMachine,
        environ: &PyDictRef,
        head: &RequestHead,
    ) -> PyResult<()> {
        let fields = &head.fields;
        for (index, field) in fields.iter().enumerate() {
            let name = head.name(field);
            if fields[..index]
                .iter()
                .any(|earlier| head.name(earlier).eq_ignore_ascii_case(name))
            {
                continue;
            }
            let mut value: Cow<'_, [u8]> = Cow::Borrowed(head.value(field));
            for later in &fields[index + 1..] {
                if head.name(later).eq_ignore_ascii_case(name) {
                    let joined = value.to_mut();
                    joined.push(b',');
                    joined.extend_from_slice(head.value(later));
                }
            }
            let value: PyObjectRef = vm.ctx.new_str(latin1(&value)).into();
            if name.eq_ignore_ascii_case(b"content-type") {
                environ.set_item(self.keys.content_type, value, vm)?;
            } else if name.eq_ignore_ascii_case(b"content-length") {
                if head.framing != BodyFraming::Chunked {
                    environ.set_item(self.keys.content_length, value, vm)?;
                }
            } else {
                let key = self.header_key(vm, name);
                environ.set_item(&*key, value, vm)?;
            }
        }
        Ok(())
    }

    /// `HTTP_` + the name upper-cased with `-` as `_` (CGI/RFC 3875 §4.1.18).
    fn header_key(&self, vm: &VirtualMachine, name: &[u8]) -> PyStrRef {
        let mut cache = self.header_keys.borrow_mut();
        if let Some(key) = cache.get(name) {
            return key.clone();
        }
        let mut key = String::with_capacity(5 + name.len());
        key.push_str("HTTP_");
        key.extend(name.iter().map(|&b| {
            if b == b'-' {
                '_'
            } else {
                b.to_ascii_uppercase() as char
            }
        }));
        let key: PyStrRef = vm.ctx.new_str(key);
        if cache.len() < HEADER_KEY_CACHE {
            cache.insert(name.to_vec(), key.clone());
        }
        key
    }
}

/// Decodes bytes as latin-1, as PEP 3333 requires for environ strings.
pub fn latin1(bytes: &[u8]) -> PyStr {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.is_ascii() => PyStr::from(text),
        _ => PyStr::from(bytes.iter().map(|&b| b as char).collect::<String>()),
    }
}

/// `host[:port]` to name and port; an absent port is the scheme's, 80.
fn split_authority(authority: &[u8]) -> (Cow<'_, [u8]>, Cow<'_, [u8]>) {
    let port_start = if authority.first() == Some(&b'[') {
        authority
            .iter()
            .position(|&b| b == b']')
            .map(|close| close + 1)
    } else {
        authority.iter().rposition(|&b| b == b':')
    };
    match port_start {
        Some(at) if authority.get(at) == Some(&b':') => (
            Cow::Borrowed(&authority[..at]),
            Cow::Borrowed(&authority[at + 1..]),
        ),
        _ => (Cow::Borrowed(authority), Cow::Borrowed(b"80")),
    }
}

/// mod_ssl's names for what the connection's TLS negotiated (as mod_wsgi
/// passes them): HTTPS, SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_VERIFY and,
/// with a client certificate, SSL_CLIENT_CERT (PEM). Keys and fixed values
/// are interned: no allocation per request but the certificate's text.
fn set_tls(vm: &VirtualMachine, environ: &PyDictRef, tls: &TlsFacts) -> PyResult<()> {
    let set =
        |key: &'static str, value: PyObjectRef| environ.set_item(vm.ctx.intern_str(key), value, vm);
    let fixed = |value: &'static str| -> PyObjectRef { vm.ctx.intern_str(value).to_owned().into() };
    set("HTTPS", fixed("on"))?;
    set("SSL_PROTOCOL", fixed(tls.protocol))?;
    set("SSL_CIPHER", fixed(tls.cipher))?;
    match &tls.client_cert {
        Some(pem) => {
            set("SSL_CLIENT_VERIFY", fixed("SUCCESS"))?;
            set("SSL_CLIENT_CERT", vm.ctx.new_str(pem.as_str()).into())
        }
        None => set("SSL_CLIENT_VERIFY", fixed("NONE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_splits_into_name_and_port() {
        let parts = |a: &str| {
            let (n, p) = split_authority(a.as_bytes());
            (
                String::from_utf8(n.into_owned()).unwrap(),
                String::from_utf8(p.into_owned()).unwrap(),
            )
        };
        assert_eq!(
            parts("example.com:8080"),
            ("example.com".into(), "8080".into())
        );
        assert_eq!(parts("example.com"), ("example.com".into(), "80".into()));
        assert_eq!(parts("[::1]:443"), ("[::1]".into(), "443".into()));
        assert_eq!(parts("[::1]"), ("[::1]".into(), "80".into()));
    }
}
