//! A minimal static HTTP server on the host, for a guest on qemu's user network (which reaches
//! the host's 127.0.0.1 as 10.0.2.2): Alpine's own `apk` in the booted system fetches from it as
//! from any remote repository, and caches what it fetched on the boot medium.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A running server; stops when dropped.
pub struct Server {
    /// The port on 127.0.0.1.
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Request paths served, for assertions.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Serve files under `root` (URL `/x` = `root/x`).
    pub fn start(root: &Path) -> Server {
        Self::start_with(root, None)
    }

    /// The same over HTTPS, with the certificate of `ca` (for 10.0.2.2 and 127.0.0.1).
    pub fn start_tls(root: &Path, ca: &TestCa) -> Server {
        Self::start_with(root, Some(ca.config.clone()))
    }

    fn start_with(root: &Path, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (root, s2, l2) = (root.to_path_buf(), stop.clone(), log.clone());
        std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (root, l3, tls) = (root.clone(), l2.clone(), tls.clone());
                        std::thread::spawn(move || {
                            let _ = conn.set_nonblocking(false);
                            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                            match tls.map(rustls::ServerConnection::new) {
                                Some(Ok(session)) => {
                                    let mut stream = rustls::StreamOwned::new(session, conn);
                                    let _ = serve(&mut stream, &root, &l3);
                                    stream.conn.send_close_notify();
                                    let _ = stream.flush();
                                }
                                Some(Err(_)) => {}
                                None => {
                                    let _ = serve(&mut { conn }, &root, &l3);
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Server { port, stop, log }
    }
}

/// A test certificate authority and a server certificate it signed for the addresses a guest
/// (10.0.2.2) and the host (127.0.0.1) reach the server at.
pub struct TestCa {
    /// The authority's certificate (PEM): what `mkinitfs --ca` embeds.
    pub ca_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    /// A new authority named `name` and its server certificate.
    pub fn new(name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["10.0.2.2".to_string(), "127.0.0.1".to_string()])
            .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server configuration");
        TestCa {
            ca_pem: ca_cert.pem(),
            config: Arc::new(config),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve<S: std::io::Read + Write>(
    conn: &mut S,
    root: &Path,
    log: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Drain the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    drop(reader);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_string());
    let rel = Path::new(path.trim_start_matches('/'));
    let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
    let file: Option<PathBuf> = safe.then(|| root.join(rel)).filter(|p| p.is_file());
    match file.and_then(|f| std::fs::read(f).ok()) {
        Some(body) => {
            write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n", body.len())?;
            if method != "HEAD" {
                conn.write_all(&body)?;
            }
        }
        None => {
            write!(
                conn,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
    }
    conn.flush()
}
