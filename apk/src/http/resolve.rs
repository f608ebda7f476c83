//! Name resolution without NSS. A static glibc binary cannot trust `getaddrinfo` (it loads NSS
//! modules per `/etc/nsswitch.conf`, which an initramfs does not have), so the HTTP client asks a
//! [`Resolve`] instead: [`DnsResolver`] reads `/etc/hosts` and queries the `nameserver`s of
//! `/etc/resolv.conf` (or servers given by the caller, e.g. from a DHCP lease) over UDP, with
//! `search` domains, bounded time and retries. IP literals never reach a resolver.

use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, PacketFlag, Question, CLASS, QCLASS, QTYPE, RCODE, TYPE};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

/// Turns a host name into addresses. Implementations must bound their time.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    /// The addresses of `host` (a name, never an IP literal), best first; an error names the host.
    fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// A resolver that knows only IP literals and a fixed table: for callers without any name
/// service (and for tests).
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    /// Host name (lower case) to addresses.
    pub table: Vec<(String, Vec<IpAddr>)>,
}

impl Resolve for StaticResolver {
    fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let host = host.to_ascii_lowercase();
        self.table
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, a)| a.clone())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| not_found(&host))
    }
}

fn not_found(host: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host}: host name not found"),
    )
}

/// `/etc/hosts` and DNS over UDP.
#[derive(Clone, Debug)]
pub struct DnsResolver {
    /// `/etc/hosts` entries: address and its names (lower case).
    pub hosts: Vec<(IpAddr, Vec<String>)>,
    /// Name servers, asked in order.
    pub nameservers: Vec<IpAddr>,
    /// `search` domains tried for names without a dot.
    pub search: Vec<String>,
    /// Time to wait for one answer.
    pub timeout: Duration,
    /// Rounds over all servers.
    pub attempts: u32,
}

impl Default for DnsResolver {
    fn default() -> Self {
        DnsResolver {
            hosts: Vec::new(),
            nameservers: Vec::new(),
            search: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl DnsResolver {
    /// The host's configuration: `/etc/hosts` and `/etc/resolv.conf` (missing files give an
    /// empty table and no servers).
    pub fn system() -> DnsResolver {
        Self::from_files(Path::new("/etc/hosts"), Path::new("/etc/resolv.conf"))
    }

    /// Read a hosts file and a resolv.conf.
    pub fn from_files(hosts: &Path, resolv_conf: &Path) -> DnsResolver {
        let mut r = DnsResolver::default();
        if let Ok(t) = std::fs::read_to_string(hosts) {
            r.hosts = parse_hosts(&t);
        }
        if let Ok(t) = std::fs::read_to_string(resolv_conf) {
            r.apply_resolv_conf(&t);
        }
        r
    }

    /// Take `nameserver`, `search`/`domain` and `options timeout:N attempts:N` from resolv.conf
    /// text.
    pub fn apply_resolv_conf(&mut self, text: &str) {
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => {
                    if let Some(ip) = w.next().and_then(|a| a.split('%').next()?.parse().ok()) {
                        self.nameservers.push(ip);
                    }
                }
                Some("search") | Some("domain") => {
                    self.search = w.map(|d| d.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => {
                    for o in w {
                        if let Some(n) = o.strip_prefix("timeout:").and_then(|n| n.parse().ok()) {
                            self.timeout = Duration::from_secs(u64::clamp(n, 1, 30));
                        }
                        if let Some(n) = o.strip_prefix("attempts:").and_then(|n| n.parse().ok()) {
                            self.attempts = u32::clamp(n, 1, 5);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn in_hosts(&self, host: &str) -> Vec<IpAddr> {
        self.hosts
            .iter()
            .filter(|(_, names)| names.iter().any(|n| n == host))
            .map(|(a, _)| *a)
            .collect()
    }

    /// Names to ask for, in order (`search` domains first for a name without a dot).
    fn candidates(&self, host: &str) -> Vec<String> {
        let host = host.trim_end_matches('.');
        let mut v = Vec::new();
        if !host.contains('.') {
            v.extend(self.search.iter().map(|d| format!("{host}.{d}")));
        }
        v.push(host.to_string());
        v
    }

    fn query_all(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        let mut last = not_found(name);
        for _ in 0..self.attempts.max(1) {
            for ns in &self.nameservers {
                let server = SocketAddr::new(*ns, 53);
                let mut found = Vec::new();
                let mut answered = false;
                for qtype in [TYPE::A, TYPE::AAAA] {
                    match query(server, name, qtype, self.timeout) {
                        Ok(addrs) => {
                            answered = true;
                            found.extend(addrs);
                            if !found.is_empty() {
                                break;
                            }
                        }
                        Err(e) => last = e,
                    }
                }
                if !found.is_empty() {
                    return Ok(found);
                }
                if answered {
                    // An authoritative "no such name" from a working server is final.
                    return Err(not_found(name));
                }
            }
        }
        Err(last)
    }
}

impl Resolve for DnsResolver {
    fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let host = host.to_ascii_lowercase();
        let local = self.in_hosts(&host);
        if !local.is_empty() {
            return Ok(local);
        }
        if host == "localhost" {
            return Ok(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        if self.nameservers.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host}: no name server configured"),
            ));
        }
        let mut last = not_found(&host);
        for name in self.candidates(&host) {
            match self.query_all(&name) {
                Ok(a) => return Ok(a),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Parse `/etc/hosts`: `ADDRESS NAME [ALIAS...]`, `#` comments.
pub fn parse_hosts(text: &str) -> Vec<(IpAddr, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut w = l.split_whitespace();
            let ip: IpAddr = w.next()?.split('%').next()?.parse().ok()?;
            let names: Vec<String> = w.map(str::to_ascii_lowercase).collect();
            (!names.is_empty()).then_some((ip, names))
        })
        .collect()
}

/// One question to one server over UDP. `Ok(empty)` is a valid answer with no address of this
/// type; NXDOMAIN is `Ok(empty)` too (the caller decides).
fn query(
    server: SocketAddr,
    name: &str,
    qtype: TYPE,
    timeout: Duration,
) -> io::Result<Vec<IpAddr>> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {why}"));
    let id = random_id();
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    let qname = Name::new(name).map_err(|_| bad("not a valid host name"))?;
    packet.questions.push(Question::new(
        qname,
        QTYPE::TYPE(qtype),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    let bytes = packet
        .build_bytes_vec()
        .map_err(|_| bad("not a valid host name"))?;
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.send(&bytes)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    loop {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{name}: no answer from name server {}", server.ip()),
                ))
            }
            Err(e) => return Err(e),
        };
        // A connected UDP socket only receives from the server; the id and the question tie the
        // answer to this query (anything else is skipped until the deadline).
        if let Ok(reply) = Packet::parse(&buf[..n]) {
            let same_question = reply
                .questions
                .first()
                .is_some_and(|q| q.qname.to_string().eq_ignore_ascii_case(name));
            if reply.id() == id && reply.has_flags(PacketFlag::RESPONSE) && same_question {
                return match reply.rcode() {
                    RCODE::NoError | RCODE::NameError => Ok(reply
                        .answers
                        .iter()
                        .filter_map(|rr| match &rr.rdata {
                            RData::A(a) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
                            RData::AAAA(a) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
                            _ => None,
                        })
                        .collect()),
                    other => Err(bad(&format!("name server answered {other:?}"))),
                };
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{name}: no answer from name server {}", server.ip()),
            ));
        }
    }
}

fn random_id() -> u16 {
    use rand_core::RngCore;
    (rand_core::OsRng.next_u32() & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv_conf() {
        let hosts = parse_hosts("# c\n127.0.0.1 localhost loc\n10.0.2.2 Mirror mirror.lan # x\n::1 ip6-localhost\nbogus line\n");
        assert_eq!(hosts.len(), 3);
        let mut r = DnsResolver {
            hosts,
            ..Default::default()
        };
        r.apply_resolv_conf("nameserver 127.0.0.53\nnameserver fe80::1%eth0\nsearch lan example\noptions timeout:2 attempts:9\n");
        assert_eq!(r.nameservers.len(), 2);
        assert_eq!(r.timeout, Duration::from_secs(2));
        assert_eq!(r.attempts, 5);
        assert_eq!(
            r.resolve("MIRROR").unwrap(),
            vec!["10.0.2.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(r.candidates("dl"), vec!["dl.lan", "dl.example", "dl"]);
        assert_eq!(r.candidates("dl.example.org."), vec!["dl.example.org"]);
        let none = DnsResolver::default().resolve("x.example").unwrap_err();
        assert_eq!(none.to_string(), "x.example: no name server configured");
    }

    /// A one-shot DNS server on loopback answers with an A record.
    #[test]
    fn queries_a_name_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let q = Packet::parse(&buf[..n]).unwrap();
                let mut reply = Packet::new_reply(q.id());
                reply.questions = q.questions.clone();
                if q.questions[0].qname.to_string() == "mirror.test" {
                    reply.answers.push(simple_dns::ResourceRecord::new(
                        q.questions[0].qname.clone(),
                        CLASS::IN,
                        60,
                        RData::A(simple_dns::rdata::A {
                            address: u32::from(Ipv4Addr::new(192, 0, 2, 7)),
                        }),
                    ));
                } else {
                    *reply.rcode_mut() = RCODE::NameError;
                }
                // A forged answer with another id first: skipped.
                let mut forged = reply.clone();
                forged.set_id(q.id().wrapping_add(1));
                server
                    .send_to(&forged.build_bytes_vec().unwrap(), from)
                    .unwrap();
                server
                    .send_to(&reply.build_bytes_vec().unwrap(), from)
                    .unwrap();
            }
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let got = query(addr, "mirror.test", TYPE::A, Duration::from_secs(5)).unwrap();
        assert_eq!(got, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))]);
        let none = query(addr, "nope.test", TYPE::A, Duration::from_secs(5)).unwrap();
        assert!(none.is_empty());
        t.join().unwrap();
    }
}
