//! The HTTP/HTTPS client of the apk core: what `apk update`, `apk add` from a remote repository,
//! `apk fetch` and `mkimage --repository URL` download through, and what the boot init will call
//! for netboot (the crate README, "Remote repositories", describes what users see).
//!
//! Built on `ureq` (blocking, no threads, no async runtime) with `rustls` and the `ring` crypto
//! provider, so it links into the static binaries and the static PID 1. It never spawns a process
//! and never consults NSS: host names go through a pluggable [`Resolve`] (by default
//! [`DnsResolver`]: `/etc/hosts`, then UDP DNS to the `resolv.conf` name servers), and IP literals
//! need no resolver at all.
//!
//! What it guarantees to callers:
//! - **Bounded**: every request has a byte limit ([`Get::limit`]); a body longer than that (or a
//!   `Content-Length` announcing more) fails with [`HttpErrorKind::TooLarge`] before more is
//!   read. Connect and read timeouts bound the time a silent server can hold a request, and a
//!   minimum rate ([`ClientOptions::min_rate`]) the time a trickling one can: a body that moves
//!   fewer bytes per second than that over a whole read-timeout window fails.
//! - **Retried only when it may help**: connection failures, timeouts, truncated bodies and
//!   HTTP 408/429/500/502/503/504 are retried up to [`ClientOptions::retries`] times with
//!   exponential backoff; any other failure (404, a TLS certificate error, too large) is final.
//! - **One line per failure**: [`HttpError`] prints as `URL: reason`, the URL with its password
//!   masked, e.g. `http://10.0.2.2:8080/main/x86_64/APKINDEX.tar.gz: HTTP 404 Not Found`.
//! - **Redirects** are followed up to [`ClientOptions::max_redirects`] hops (a loop ends there).
//! - **Proxies**: `http_proxy`, `https_proxy`, `no_proxy` ([`ProxyConfig`]); the client tunnels
//!   through the proxy with `CONNECT`.
//!
//! ```no_run
//! use apk::http::{CaBundle, Client, ClientOptions, Get};
//! let mut opts = ClientOptions::default();
//! let pem = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
//! opts.ca = CaBundle::from_pem("initramfs bundle", &pem).unwrap();
//! let client = Client::new(opts);
//! let index = client
//!     .get_bytes("https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz",
//!                &Get::limited(64 << 20))
//!     .unwrap();
//! # let _ = index;
//! ```
//!
//! The bytes a caller gets are transport-checked only; indexes and packages are verified by the
//! callers ([`crate::fetch`]) exactly as local files are, before anything is stored.

mod ca;
mod proxy;
mod resolve;
pub mod url;

pub use ca::{CaBundle, CaError, SYSTEM_BUNDLE};
pub use proxy::ProxyConfig;
pub use resolve::{parse_hosts, DnsResolver, Resolve, StaticResolver};

use std::io::{self, Read, Seek, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// The default [`ClientOptions::min_rate`]: 1 KiB/s, far below any real link.
pub const DEFAULT_MIN_RATE: u64 = 1024;

/// How the client connects, waits and retries.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Certificate authorities for HTTPS.
    pub ca: CaBundle,
    /// Proxies per scheme.
    pub proxy: ProxyConfig,
    /// Host name resolution (`None`: [`DnsResolver::system`], read when the client is made).
    pub resolver: Option<Arc<dyn Resolve>>,
    /// Time to establish a connection (TCP, proxy, TLS).
    pub connect_timeout: Duration,
    /// Longest silence while waiting for the response or a piece of the body.
    pub read_timeout: Duration,
    /// Slowest body accepted, in bytes per second averaged over each `read_timeout` (0: any):
    /// a server sending a byte now and then, never silent for a whole timeout, cannot hold a
    /// request (and a boot) forever.
    pub min_rate: u64,
    /// Extra attempts after a transient failure.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Redirect hops followed before giving up.
    pub max_redirects: u32,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Skip the check of HTTPS server certificates (`--no-check-certificate`).
    pub insecure: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca: CaBundle::empty(),
            proxy: ProxyConfig::default(),
            resolver: None,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            min_rate: DEFAULT_MIN_RATE,
            retries: 2,
            backoff: Duration::from_secs(1),
            max_redirects: 5,
            user_agent: concat!(
                "apk-tools/3 (alpine-diskless apk ",
                env!("CARGO_PKG_VERSION"),
                ")"
            )
            .into(),
            insecure: false,
        }
    }
}

/// What one request asks for.
#[derive(Clone, Copy, Debug)]
pub struct Get {
    /// Most bytes accepted for the body.
    pub limit: u64,
    /// Send `If-Modified-Since` with this time (a copy from then is held).
    pub if_modified_since: Option<SystemTime>,
}

impl Get {
    /// A plain request for at most `limit` bytes.
    pub fn limited(limit: u64) -> Get {
        Get {
            limit,
            if_modified_since: None,
        }
    }
}

/// The result of a request that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The body was written to the sink: this many bytes.
    Body(u64),
    /// `304 Not Modified` (only with [`Get::if_modified_since`]); nothing was written.
    NotModified,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", url::display(.url))]
pub struct HttpError {
    /// The URL requested (the original one, before redirects).
    pub url: String,
    /// What went wrong.
    pub kind: HttpErrorKind,
}

/// The reasons a request fails.
#[derive(Debug, thiserror::Error)]
pub enum HttpErrorKind {
    /// The server answered with a status other than 2xx/304.
    #[error("HTTP {code}{}", .reason.map(|r| format!(" {r}")).unwrap_or_default())]
    Status {
        /// Status code.
        code: u16,
        /// Its standard reason phrase, when known.
        reason: Option<&'static str>,
    },
    /// The body is longer than the caller allows.
    #[error("larger than the {0} bytes allowed")]
    TooLarge(u64),
    /// The connection ended before the announced length.
    #[error("truncated: {got} of {want} bytes received")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes announced by `Content-Length`.
        want: u64,
    },
    /// Connecting, or waiting for data, took too long.
    #[error("timed out ({0})")]
    Timeout(&'static str),
    /// The body came slower than [`ClientOptions::min_rate`] over a whole window.
    #[error("too slow: under {rate} bytes/s for {} s", .window.as_secs_f64())]
    TooSlow {
        /// The minimum rate, bytes per second.
        rate: u64,
        /// The window it was measured over.
        window: Duration,
    },
    /// Name resolution, connection or read failed at the socket.
    #[error("{}", crate::root::io_message(.0))]
    Io(io::Error),
    /// TLS failed (certificate, handshake).
    #[error("TLS: {0}")]
    Tls(String),
    /// More redirects than allowed (or a loop).
    #[error("too many redirects (last: {})", url::display(.0))]
    TooManyRedirects(String),
    /// A redirect without a usable `Location`.
    #[error("redirect without a location")]
    BadRedirect,
    /// An `https://` URL redirected to `http://` (apk-tools' libfetch refuses it too): a man in
    /// the middle could then serve an older, still validly signed index.
    #[error("redirect from https to http refused ({})", url::display(.0))]
    InsecureRedirect(String),
    /// Not an `http://` or `https://` URL.
    #[error("unsupported URL (only http:// and https://)")]
    UnsupportedUrl,
    /// The server spoke something that is not HTTP/1.1.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The sink refused the bytes (a full disk, for example).
    #[error("writing: {}", crate::root::io_message(.0))]
    Sink(io::Error),
}

impl HttpErrorKind {
    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpErrorKind::Status { code, .. } => {
                matches!(code, 408 | 429 | 500 | 502 | 503 | 504)
            }
            HttpErrorKind::Timeout(_) | HttpErrorKind::Truncated { .. } => true,
            HttpErrorKind::Io(e) => !matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            ),
            _ => false,
        }
    }
}

/// Where a body goes: written in order, and started over when a retry begins.
pub trait Sink: Write {
    /// Drop what was written so far.
    fn restart(&mut self) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn restart(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

impl Sink for std::fs::File {
    fn restart(&mut self) -> io::Result<()> {
        self.set_len(0)?;
        self.seek(io::SeekFrom::Start(0)).map(|_| ())
    }
}

/// Progress of one download: bytes so far and the announced total.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// An HTTP/HTTPS client. Cheap to share by reference across threads.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    opts: ClientOptions,
}

/// Adapts a [`Resolve`] to ureq (IP literals are answered here, never by the resolver).
#[derive(Debug)]
struct ResolverAdapter(Arc<dyn Resolve>);

impl Resolver for ResolverAdapter {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self.0.resolve(host).map_err(ureq::Error::Io)?,
        };
        let mut out = self.empty();
        for ip in ips.into_iter().take(16) {
            out.push(SocketAddr::new(ip, port));
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

impl Client {
    /// A client with these options.
    pub fn new(opts: ClientOptions) -> Client {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(opts.ca.certs()))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .disable_verification(opts.insecure)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(opts.user_agent.as_str())
            // Repository files are served as they are (`.tar.gz`): no content decoding.
            .accept_encoding("identity")
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .max_idle_connections_per_host(2)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            DefaultConnector::default(),
            ResolverAdapter(
                opts.resolver
                    .clone()
                    .unwrap_or_else(|| Arc::new(DnsResolver::system())),
            ),
        );
        Client { agent, opts }
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Download `url` into memory.
    pub fn get_bytes(&self, url: &str, get: &Get) -> Result<Vec<u8>, HttpError> {
        let mut buf = Vec::new();
        self.get(url, get, &mut buf, &mut |_, _| {})?;
        Ok(buf)
    }

    /// Download `url` into `sink`, calling `progress` as bytes arrive. Transient failures are
    /// retried (the sink is restarted first); the error names `url`.
    pub fn get(
        &self,
        url: &str,
        get: &Get,
        sink: &mut dyn Sink,
        progress: ProgressFn<'_>,
    ) -> Result<Fetched, HttpError> {
        let fail = |kind| HttpError {
            url: url.to_string(),
            kind,
        };
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                sink.restart().map_err(|e| fail(HttpErrorKind::Sink(e)))?;
            }
            match self.once(url, get, sink, progress) {
                Ok(f) => return Ok(f),
                Err(kind) if kind.is_transient() && attempt < self.opts.retries => {
                    log::debug!("{}: {kind}; retrying", url::display(url));
                    std::thread::sleep(self.opts.backoff.saturating_mul(1 << attempt.min(16)));
                    attempt += 1;
                }
                Err(kind) => return Err(fail(kind)),
            }
        }
    }

    /// One attempt, following redirects.
    fn once(
        &self,
        url: &str,
        get: &Get,
        sink: &mut dyn Sink,
        progress: ProgressFn<'_>,
    ) -> Result<Fetched, HttpErrorKind> {
        let mut current = url.to_string();
        for _ in 0..=self.opts.max_redirects {
            let u = url::parse(&current).ok_or(HttpErrorKind::UnsupportedUrl)?;
            if u.scheme != "http" && u.scheme != "https" {
                return Err(HttpErrorKind::UnsupportedUrl);
            }
            let proxy = match self.opts.proxy.for_target(u.scheme, u.host, u.port) {
                Some(p) => Some(ureq::Proxy::new(p).map_err(|e| {
                    HttpErrorKind::Protocol(format!("proxy {}: {e}", url::display(p)))
                })?),
                None => None,
            };
            let mut req = self.agent.get(&current);
            if let Some(t) = get.if_modified_since {
                req = req.header("If-Modified-Since", http_date(t));
            }
            let resp = req
                .config()
                .proxy(proxy)
                .build()
                .call()
                .map_err(map_error)?;
            let status = resp.status().as_u16();
            match status {
                200..=299 => {
                    let pace = Pace::new(self.opts.min_rate, self.opts.read_timeout);
                    return read_body(resp, get.limit, pace, sink, progress);
                }
                304 if get.if_modified_since.is_some() => return Ok(Fetched::NotModified),
                301 | 302 | 303 | 307 | 308 => {
                    let loc = resp
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .ok_or(HttpErrorKind::BadRedirect)?;
                    let next = url::join(&current, loc);
                    if u.scheme == "https" && !next.starts_with("https://") {
                        return Err(HttpErrorKind::InsecureRedirect(next));
                    }
                    current = next;
                }
                _ => {
                    return Err(HttpErrorKind::Status {
                        code: status,
                        reason: resp.status().canonical_reason(),
                    })
                }
            }
        }
        Err(HttpErrorKind::TooManyRedirects(current))
    }
}

/// Watches the pace of a body: fewer than `rate` bytes per second over a whole `window` fails.
struct Pace {
    rate: u64,
    window: Duration,
    since: Instant,
    got_then: u64,
}

impl Pace {
    fn new(rate: u64, window: Duration) -> Pace {
        Pace {
            rate,
            window,
            since: Instant::now(),
            got_then: 0,
        }
    }

    /// Called after each read with the bytes received so far.
    fn check(&mut self, got: u64) -> Result<(), HttpErrorKind> {
        let elapsed = self.since.elapsed();
        if self.rate == 0 || elapsed < self.window {
            return Ok(());
        }
        let moved = got.saturating_sub(self.got_then) as f64;
        if moved < self.rate as f64 * elapsed.as_secs_f64() {
            return Err(HttpErrorKind::TooSlow {
                rate: self.rate,
                window: self.window,
            });
        }
        self.since = Instant::now();
        self.got_then = got;
        Ok(())
    }
}

fn read_body(
    resp: ureq::http::Response<ureq::Body>,
    limit: u64,
    mut pace: Pace,
    sink: &mut dyn Sink,
    progress: ProgressFn<'_>,
) -> Result<Fetched, HttpErrorKind> {
    let announced = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(HttpErrorKind::TooLarge(limit));
    }
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got: u64 = 0;
    progress(0, announced);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match map_io(e) {
                    // The peer closed early: ureq notices against Content-Length.
                    HttpErrorKind::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        HttpErrorKind::Truncated {
                            got,
                            want: announced.unwrap_or(got),
                        }
                    }
                    k => k,
                });
            }
        };
        got += n as u64;
        if got > limit {
            return Err(HttpErrorKind::TooLarge(limit));
        }
        sink.write_all(&buf[..n]).map_err(HttpErrorKind::Sink)?;
        progress(got, announced);
        pace.check(got)?;
    }
    if let Some(want) = announced {
        if got < want {
            return Err(HttpErrorKind::Truncated { got, want });
        }
    }
    sink.flush().map_err(HttpErrorKind::Sink)?;
    Ok(Fetched::Body(got))
}

fn map_io(e: io::Error) -> HttpErrorKind {
    if e.get_ref().is_some_and(|x| x.is::<ureq::Error>()) {
        // ureq wraps its own errors in io::Error::other while reading a body.
        let inner = e.into_inner().expect("checked above");
        return match inner.downcast::<ureq::Error>() {
            Ok(ue) => map_error(*ue),
            Err(other) => HttpErrorKind::Io(io::Error::other(other)),
        };
    }
    if let Some(tls) = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()) {
        return HttpErrorKind::Tls(tls.to_string());
    }
    if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
        return HttpErrorKind::Timeout("no data");
    }
    HttpErrorKind::Io(e)
}

fn map_error(e: ureq::Error) -> HttpErrorKind {
    use ureq::Error as E;
    match e {
        E::StatusCode(code) => HttpErrorKind::Status {
            code,
            reason: ureq::http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason()),
        },
        E::Timeout(t) => HttpErrorKind::Timeout(match t {
            ureq::Timeout::Connect | ureq::Timeout::Resolve => "connecting",
            _ => "no data",
        }),
        E::Io(e) => map_io(e),
        E::HostNotFound => HttpErrorKind::Io(io::Error::new(
            io::ErrorKind::NotFound,
            "host name not found",
        )),
        E::TooManyRedirects => HttpErrorKind::TooManyRedirects(String::new()),
        E::Tls(m) => HttpErrorKind::Tls(m.to_string()),
        E::Rustls(e) => HttpErrorKind::Tls(e.to_string()),
        E::Pem(e) => HttpErrorKind::Tls(e.to_string()),
        E::BadUri(_) => HttpErrorKind::UnsupportedUrl,
        E::ConnectionFailed => HttpErrorKind::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "connection failed",
        )),
        E::BodyExceedsLimit(n) => HttpErrorKind::TooLarge(n),
        other => HttpErrorKind::Protocol(other.to_string()),
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate).
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    const WD: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WD[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MO[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn messages() {
        let e = HttpError {
            url: "http://u:pw@10.0.2.2:8080/main/x86_64/APKINDEX.tar.gz".into(),
            kind: HttpErrorKind::Status {
                code: 404,
                reason: Some("Not Found"),
            },
        };
        assert_eq!(
            e.to_string(),
            "http://u:*@10.0.2.2:8080/main/x86_64/APKINDEX.tar.gz: HTTP 404 Not Found"
        );
        assert!(!e.kind.is_transient());
        assert!(HttpErrorKind::Status {
            code: 503,
            reason: None
        }
        .is_transient());
        assert!(HttpErrorKind::Timeout("no data").is_transient());
        assert!(!HttpErrorKind::TooLarge(1).is_transient());
    }
}
