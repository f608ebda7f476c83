//! A minimal static HTTP server on the host, for a guest on qemu's user network (which reaches
//! the host's 127.0.0.1 as 10.0.2.2): Alpine's own `apk` in the booted system fetches from it as
//! from any remote repository, and caches what it fetched on the boot medium.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
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
                        let (root, l3) = (root.clone(), l2.clone());
                        std::thread::spawn(move || {
                            let _ = serve(conn, &root, &l3);
                        });
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Server { port, stop, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    mut conn: TcpStream,
    root: &Path,
    log: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Drain the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
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
