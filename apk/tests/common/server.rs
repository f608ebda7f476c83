//! A small HTTP/HTTPS file server and a CONNECT proxy on 127.0.0.1 (ports chosen by the OS), for
//! the remote-repository tests. The server can be told to misbehave per path: flip a byte,
//! truncate, stall, answer with a status, or redirect in a loop. Both log what they were asked.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server answers a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// One bit of the body flipped (in the middle).
    FlipByte,
    /// Full `Content-Length`, half the body, then the connection closes.
    Truncate,
    /// Headers and a few bytes, then silence (until the server stops).
    Stall,
    /// Headers, then one byte every 200 ms: never silent, never done.
    Trickle,
    /// This status with a short body.
    Status(u16),
    /// `302` to itself, forever.
    RedirectLoop,
    /// `302` to this path.
    Redirect(String),
    /// The body of another file instead.
    Serve(PathBuf),
}

type Faults = Arc<Mutex<Vec<(String, Fault)>>>;

/// A file server over a directory.
pub struct Server {
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub url: String,
    /// The port.
    pub port: u16,
    faults: Faults,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A test certificate authority and a server certificate for 127.0.0.1 and localhost.
pub struct TestCa {
    /// The CA certificate (PEM), what clients are given with `--ca`.
    pub ca_pem: String,
    /// The server's rustls configuration.
    pub config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// Make a CA and a server certificate signed by it.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "apk test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        TestCa {
            ca_pem: ca_cert.pem(),
            config: Arc::new(config),
        }
    }
}

impl Server {
    /// Serve `root` over HTTP.
    pub fn start(root: &Path) -> Server {
        Self::start_with(root, None)
    }

    /// Serve `root` over HTTPS with this configuration.
    pub fn start_tls(root: &Path, tls: Arc<rustls::ServerConfig>) -> Server {
        Self::start_with(root, Some(tls))
    }

    fn start_with(root: &Path, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let faults: Faults = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, l, s, r) = (
            faults.clone(),
            log.clone(),
            stop.clone(),
            root.to_path_buf(),
        );
        let thread = std::thread::spawn(move || {
            accept_loop(listener, &s, |stream| {
                let (f, l, s, r, tls) = (f.clone(), l.clone(), s.clone(), r.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        Some(cfg) => {
                            let conn = rustls::ServerConnection::new(cfg).unwrap();
                            let mut tls = rustls::StreamOwned::new(conn, stream);
                            serve(&mut tls, &r, &f, &l, &s);
                            tls.conn.send_close_notify();
                            let _ = tls.flush();
                        }
                        None => {
                            let mut stream = stream;
                            serve(&mut stream, &r, &f, &l, &s);
                            let _ = stream.shutdown(Shutdown::Write);
                        }
                    }
                });
            })
        });
        Server {
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            faults,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// Answer paths ending in `suffix` this way (replacing earlier faults for it).
    pub fn fault(&self, suffix: &str, fault: Fault) {
        let mut f = self.faults.lock().unwrap();
        f.retain(|(s, _)| s != suffix);
        f.push((suffix.to_string(), fault));
    }

    /// Behave again.
    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// The request paths so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, stop: &AtomicBool, mut handle: impl FnMut(TcpStream)) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => handle(s),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Read a request head (bounded); returns the request line and header lines.
fn read_head(s: &mut impl Read) -> Option<(String, Vec<String>)> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 16384 || s.read(&mut b).ok()? == 0 {
            return None;
        }
        buf.push(b[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n").map(str::to_string);
    let first = lines.next()?;
    Some((first, lines.filter(|l| !l.is_empty()).collect()))
}

fn decode(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&path[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(s: &mut impl Write, status: &str, headers: &str, body: &[u8]) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    let _ = s.write_all(body);
    let _ = s.flush();
}

fn serve(
    s: &mut (impl Read + Write),
    root: &Path,
    faults: &Faults,
    log: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let Some((line, _headers)) = read_head(s) else {
        return;
    };
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = decode(target.split('?').next().unwrap_or("/"));
    log.lock().unwrap().push(format!("{method} {path}"));
    let fault = faults
        .lock()
        .unwrap()
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(_, f)| f.clone());
    let file = root.join(path.trim_start_matches('/'));
    let read = |p: &Path| {
        if path.split('/').any(|c| c == "..") {
            None
        } else {
            std::fs::read(p).ok()
        }
    };
    match fault {
        Some(Fault::Status(code)) => {
            let reason = match code {
                404 => "Not Found",
                500 => "Internal Server Error",
                503 => "Service Unavailable",
                403 => "Forbidden",
                _ => "Error",
            };
            respond(s, &format!("{code} {reason}"), "", b"error\n");
        }
        Some(Fault::RedirectLoop) => {
            respond(s, "302 Found", &format!("Location: {path}\r\n"), b"");
        }
        Some(Fault::Redirect(to)) => {
            respond(s, "302 Found", &format!("Location: {to}\r\n"), b"");
        }
        other => {
            let body = match &other {
                Some(Fault::Serve(p)) => read(p),
                _ => read(&file),
            };
            let Some(mut body) = body else {
                respond(s, "404 Not Found", "", b"not found\n");
                return;
            };
            match other {
                Some(Fault::FlipByte) => {
                    let mid = body.len() / 2;
                    body[mid] ^= 0x01;
                    respond(s, "200 OK", "", &body);
                }
                Some(Fault::Truncate) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(&body[..body.len() / 2]);
                    let _ = s.flush();
                }
                Some(Fault::Trickle) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    for b in body.iter().take(300) {
                        if stop.load(Ordering::SeqCst)
                            || s.write_all(std::slice::from_ref(b)).is_err()
                            || s.flush().is_err()
                        {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                Some(Fault::Stall) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(&body[..body.len().min(100)]);
                    let _ = s.flush();
                    let until = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                _ => respond(s, "200 OK", "", &body),
            }
        }
    }
}

/// A CONNECT proxy that logs the targets it was asked for.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Start it.
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            accept_loop(listener, &s, |client| {
                let l = l.clone();
                std::thread::spawn(move || tunnel(client, &l));
            })
        });
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// The request lines received (`CONNECT host:port`).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tunnel(mut client: TcpStream, log: &Mutex<Vec<String>>) {
    let _ = client.set_nonblocking(false);
    let Some((line, _)) = read_head(&mut client) else {
        return;
    };
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    log.lock().unwrap().push(format!("{method} {target}"));
    // Only loopback targets: the tests never reach anything else.
    if method != "CONNECT" || !target.starts_with("127.0.0.1:") {
        respond(&mut client, "403 Forbidden", "", b"");
        return;
    }
    let Ok(upstream) = TcpStream::connect(target) else {
        respond(&mut client, "502 Bad Gateway", "", b"");
        return;
    };
    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let (mut u, mut c) = (upstream, client);
    let _ = std::io::copy(&mut u, &mut c);
    let _ = c.shutdown(Shutdown::Write);
    let _ = up.join();
}
