//! A Rust program that embeds a Python WSGI app and gives it one native
//! function, `host.stock(name)`, backed by a Rust map.
//!
//! ```sh
//! cargo run --release --ignore-rust-version --example embed            # one in-process call, one HTTP request, then stop
//! cargo run --release --ignore-rust-version --example embed -- --serve  # serve on 127.0.0.1:8000 until killed
//! ```

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use ferrocorn::Config;
use ferrocorn::embed::{App, NativeError, NativeModule, Request, Server, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve_forever = std::env::args().any(|arg| arg == "--serve");
    let stock: Arc<HashMap<&str, i64>> = Arc::new([("spoon", 12), ("fork", 0)].into());

    let mut config = Config::new("embed_app:application")?;
    config.chdir = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"));
    config.threads = 2;
    config.bind = vec![
        if serve_forever {
            "127.0.0.1:8000"
        } else {
            "127.0.0.1:0"
        }
        .parse()?,
    ];
    config.native_modules.push(
        NativeModule::new("host")
            .constant("NAME", Value::from("embed example"))
            .function("stock", move |args| match args {
                [Value::Str(name)] => stock
                    .get(name.as_str())
                    .map(|count| Value::Int(*count))
                    .ok_or_else(|| NativeError::key(name.clone())),
                _ => Err(NativeError::type_error("stock(name: str)")),
            }),
    );

    // In-process: no socket involved.
    let app = App::load(&config)?;
    let response = app.call(Request::get("/spoon"))?;
    let status = response.status();
    let (body, _) = response.into_bytes()?;
    println!("in-process: {status} {}", String::from_utf8_lossy(&body));
    drop(app);

    // Over HTTP, from threads of this process.
    let server = Server::start(&config)?;
    let address = server.tcp_addresses()[0];
    println!("serving on http://{address}");
    if serve_forever {
        loop {
            std::thread::park();
        }
    }
    let mut stream = TcpStream::connect(address)?;
    stream.write_all(b"GET /fork HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status_line = reply.lines().next().unwrap_or_default();
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    println!("over HTTP: {status_line} {body}");
    server.stop();
    println!("stopped");
    Ok(())
}
