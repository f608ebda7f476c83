//! The DHCPv4 client's protocol side (RFC 2131), without sockets: the messages it sends and what
//! it makes of the replies, as a small state machine ([`Client`]) that the network phase drives
//! (docs/boot.md, "Network"). Messages are encoded and decoded by the `dhcproto` crate.
//!
//! One exchange: DISCOVER (broadcast) → OFFER → REQUEST (broadcast, naming the server and the
//! offered address) → ACK, whose options make the [`Lease`]. A NAK starts over. Replies for
//! another transaction or another client, and anything that does not decode, are ignored. Every
//! message asks the server to broadcast its reply (the client has no address yet, and the
//! kernel drops unicast to an address it does not have).
use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DecodeError, DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};

use crate::cmdline::MacAddr;

/// How long each attempt waits for the server, in order (exponential backoff from 2 s, capped at
/// 8 s; 30 s in all); after the last one the boot fails with a clear error.
pub const ATTEMPT_TIMEOUTS: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(8),
    Duration::from_secs(8),
];

/// Largest DHCP message read (an Ethernet frame's payload).
pub const MAX_MESSAGE: usize = 1500;

/// What the client got: its address and what the server says about the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address (`yiaddr`).
    pub address: Ipv4Addr,
    /// Subnet mask as a prefix length (24 when the server gives none).
    pub prefix: u8,
    /// The first router, for the default route.
    pub router: Option<Ipv4Addr>,
    /// Name servers.
    pub dns: Vec<Ipv4Addr>,
    /// Domain name (option 15), for `search` in resolv.conf.
    pub domain: Option<String>,
    /// Lease time (`None`: infinite or not given).
    pub lease: Option<Duration>,
    /// The server that granted it.
    pub server: Ipv4Addr,
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing for this client (or not understood): keep waiting.
    Ignore,
    /// Broadcast this message and wait for the next reply.
    Send(Vec<u8>),
    /// The server refused (NAK): the message, for the log; send this DISCOVER next.
    Restart(String, Vec<u8>),
    /// Done.
    Bound(Lease),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Selecting,
    Requesting { address: Ipv4Addr, server: Ipv4Addr },
}

/// One client on one interface.
#[derive(Debug, Clone)]
pub struct Client {
    /// The BOOTREQUEST every message starts from.
    base: Message,
    mac: MacAddr,
    xid: u32,
    state: State,
    /// Seconds since the client started (`secs` of every message).
    pub elapsed: u16,
}

/// Options asked of the server.
const WANTED: [OptionCode; 6] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::AddressLeaseTime,
    OptionCode::ServerIdentifier,
];

impl Client {
    /// A client for `mac` with transaction id `xid` (chosen by the caller). `Err` only if
    /// `dhcproto` could not read the fixed BOOTP header (a bug, reported as such).
    pub fn new(mac: MacAddr, xid: u32) -> Result<Self, String> {
        let base = bootp_request(xid, mac)
            .map_err(|e| format!("DHCP: cannot build a BOOTP request: {e}"))?;
        Ok(Self {
            base,
            mac,
            xid,
            state: State::Selecting,
            elapsed: 0,
        })
    }

    /// The transaction id.
    pub fn xid(&self) -> u32 {
        self.xid
    }

    fn message(&self, kind: MessageType) -> Message {
        let mut m = self.base.clone();
        m.set_secs(self.elapsed)
            .set_flags(Flags::default().set_broadcast());
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        let mut id = vec![1u8];
        id.extend_from_slice(&self.mac.0);
        o.insert(DhcpOption::ClientIdentifier(id));
        o.insert(DhcpOption::ParameterRequestList(WANTED.to_vec()));
        o.insert(DhcpOption::MaxMessageSize(MAX_MESSAGE as u16));
        m
    }

    fn encode(m: &Message) -> Vec<u8> {
        // Encoding our own well-formed message cannot fail; an empty message would simply
        // get no answer.
        m.to_vec().unwrap_or_default()
    }

    /// (Re)starts the exchange: the DISCOVER to broadcast.
    pub fn discover(&mut self) -> Vec<u8> {
        self.state = State::Selecting;
        Self::encode(&self.message(MessageType::Discover))
    }

    /// What to do with a datagram received on port 68.
    pub fn on_reply(&mut self, bytes: &[u8]) -> Step {
        // dhcproto's `chaddr()` slices its 16-byte array by the wire's `hlen`: a larger one
        // panics (found by the boot_network fuzz target), so such a message is dropped first.
        if bytes.get(2).is_some_and(|&hlen| hlen > 16) || !options_sane(bytes) {
            return Step::Ignore;
        }
        let Ok(m) = Message::from_bytes(bytes) else {
            return Step::Ignore;
        };
        if m.opcode() != Opcode::BootReply
            || m.xid() != self.xid
            || m.chaddr().get(..6) != Some(&self.mac.0[..])
        {
            return Step::Ignore;
        }
        let server = match m.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
            _ => None,
        };
        match (&self.state, m.opts().msg_type()) {
            (State::Selecting, Some(MessageType::Offer)) => {
                let (Some(server), address) = (server, m.yiaddr()) else {
                    return Step::Ignore;
                };
                if address.is_unspecified() {
                    return Step::Ignore;
                }
                let mut req = self.message(MessageType::Request);
                req.opts_mut()
                    .insert(DhcpOption::RequestedIpAddress(address));
                req.opts_mut().insert(DhcpOption::ServerIdentifier(server));
                self.state = State::Requesting { address, server };
                Step::Send(Self::encode(&req))
            }
            (
                State::Requesting {
                    address,
                    server: chosen,
                },
                Some(MessageType::Ack),
            ) if server.is_none_or(|s| s == *chosen) && m.yiaddr() == *address => {
                Step::Bound(lease_of(&m, *chosen))
            }
            (State::Requesting { server: chosen, .. }, Some(MessageType::Nak))
                if server.is_none_or(|s| s == *chosen) =>
            {
                let why = match m.opts().get(OptionCode::Message) {
                    Some(DhcpOption::Message(t)) => printable(t),
                    _ => "no reason given".to_string(),
                };
                Step::Restart(format!("server {chosen} refused: {why}"), self.discover())
            }
            _ => Step::Ignore,
        }
    }
}

/// A BOOTREQUEST from `mac` with transaction `xid`, no options yet. Decoded from its wire form
/// rather than made by `dhcproto`'s constructors: those draw a random transaction id from the
/// kernel's random source, which blocks until the kernel's pool is initialised (minutes, early in
/// a boot under emulation).
fn bootp_request(xid: u32, mac: MacAddr) -> Result<Message, DecodeError> {
    let mut b = vec![0u8; 236];
    b[0] = 1; // op: BOOTREQUEST
    b[1] = 1; // htype: Ethernet
    b[2] = 6; // hlen
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b[28..34].copy_from_slice(&mac.0);
    b.extend_from_slice(&dhcproto::v4::MAGIC);
    b.push(255); // end of options
    Message::from_bytes(&b)
}

/// Longest server text (a NAK's reason) put on the console.
const MAX_SERVER_TEXT: usize = 128;

/// A server's text as one console line: printable ASCII only (no newline or escape sequence can
/// forge console lines), at most [`MAX_SERVER_TEXT`] characters.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(MAX_SERVER_TEXT)
        .collect()
}

/// Whether the options of a received message have the lengths their codes require, for the
/// codes whose decoder in `dhcproto` only checks the length with `debug_assert!` (a panic in a
/// debug build, an arithmetic wrap otherwise): such a message is dropped before it is decoded.
/// `dhcproto` joins consecutive options of one code into one (RFC 3396, long options), so the length
/// checked is that of each such run, not of its pieces. The walk stops at the end option or the end
/// of the datagram.
fn options_sane(bytes: &[u8]) -> bool {
    // The fixed BOOTP header (236 bytes) and the magic cookie.
    let mut rest = bytes.get(240..).unwrap_or(&[]);
    // The option being read: its code and the total length of its run so far.
    let mut run: Option<(u8, usize)> = None;
    loop {
        let Some((&code, tail)) = rest.split_first() else {
            return run.is_none_or(length_fits);
        };
        if code == 0 || code == 255 {
            if !run.take().is_none_or(length_fits) {
                return false;
            }
            if code == 255 {
                return true;
            }
            rest = tail;
            continue;
        }
        let Some((&len, tail)) = tail.split_first() else {
            return run.is_none_or(length_fits);
        };
        let len = usize::from(len);
        run = match run {
            Some((c, total)) if c == code => Some((c, total + len)),
            Some(done) if !length_fits(done) => return false,
            _ => Some((code, len)),
        };
        rest = tail.get(len..).unwrap_or(&[]);
    }
}

/// Whether a (joined) option of this code may have this length (see [`options_sane`]).
fn length_fits((code, len): (u8, usize)) -> bool {
    match code {
        80 => len == 0,        // rapid commit
        81 => len >= 3,        // client FQDN
        94 => len == 3,        // client network interface
        151 => len >= 1,       // bulk lease query status
        152..=155 => len == 4, // bulk lease query times (RFC 6926: base, state start, query start, query end)
        _ => true,
    }
}

fn lease_of(m: &Message, server: Ipv4Addr) -> Lease {
    let o = m.opts();
    let prefix = match o.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => {
            crate::cmdline::net::netmask_prefix(&mask.to_string()).unwrap_or(24)
        }
        _ => 24,
    };
    let router = match o.get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied().filter(|r| !r.is_unspecified()),
        _ => None,
    };
    let dns = match o.get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let domain = match o.get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(d)) => Some(d.clone()),
        _ => None,
    };
    let lease = match o.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(s)) if *s != u32::MAX => {
            Some(Duration::from_secs(u64::from(*s)))
        }
        _ => None,
    };
    Lease {
        address: m.yiaddr(),
        prefix,
        router,
        dns,
        domain,
        lease,
        server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
    const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

    /// What a server (qemu's, dnsmasq) answers to `request`.
    fn reply(request: &[u8], kind: MessageType, yiaddr: Ipv4Addr, full: bool) -> Vec<u8> {
        let req = Message::from_bytes(request).unwrap();
        let mut m = Message::new_with_id(
            req.xid(),
            Ipv4Addr::UNSPECIFIED,
            yiaddr,
            SERVER,
            Ipv4Addr::UNSPECIFIED,
            req.chaddr(),
        );
        m.set_opcode(Opcode::BootReply);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(SERVER));
        if full {
            o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
            o.insert(DhcpOption::Router(vec![SERVER]));
            o.insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
                10, 0, 2, 3,
            )]));
            o.insert(DhcpOption::DomainName("lab.example".into()));
            o.insert(DhcpOption::AddressLeaseTime(86400));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn discover_is_a_broadcast_request_for_our_options() {
        let mut c = Client::new(MAC, 0xdead_beef).unwrap();
        let d = Message::from_bytes(&c.discover()).unwrap();
        assert_eq!(d.opcode(), Opcode::BootRequest);
        assert_eq!(d.xid(), 0xdead_beef);
        assert_eq!(&d.chaddr()[..6], &MAC.0);
        assert!(d.flags().broadcast());
        assert_eq!((d.htype(), d.hlen()), (dhcproto::v4::HType::Eth, 6));
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
        match d.opts().get(OptionCode::ParameterRequestList) {
            Some(DhcpOption::ParameterRequestList(l)) => {
                assert!(l.contains(&OptionCode::Router));
                assert!(l.contains(&OptionCode::DomainNameServer));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn offer_request_ack_makes_the_lease() {
        let mut c = Client::new(MAC, 7).unwrap();
        let discover = c.discover();
        let Step::Send(request) = c.on_reply(&reply(&discover, MessageType::Offer, ME, true))
        else {
            panic!("no request")
        };
        let r = Message::from_bytes(&request).unwrap();
        assert_eq!(r.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(
            r.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(ME))
        );
        assert_eq!(
            r.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(SERVER))
        );
        // A second offer (another server) while requesting is ignored.
        assert_eq!(
            c.on_reply(&reply(&discover, MessageType::Offer, ME, true)),
            Step::Ignore
        );
        let step = c.on_reply(&reply(&request, MessageType::Ack, ME, true));
        assert_eq!(
            step,
            Step::Bound(Lease {
                address: ME,
                prefix: 24,
                router: Some(SERVER),
                dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
                domain: Some("lab.example".into()),
                lease: Some(Duration::from_secs(86400)),
                server: SERVER,
            })
        );
    }

    #[test]
    fn bare_ack_gets_defaults() {
        let mut c = Client::new(MAC, 7).unwrap();
        let d = c.discover();
        let Step::Send(r) = c.on_reply(&reply(&d, MessageType::Offer, ME, false)) else {
            panic!()
        };
        let Step::Bound(l) = c.on_reply(&reply(&r, MessageType::Ack, ME, false)) else {
            panic!()
        };
        assert_eq!((l.prefix, l.router, l.lease), (24, None, None));
        assert!(l.dns.is_empty());
    }

    #[test]
    fn nak_restarts_and_strangers_are_ignored() {
        let mut c = Client::new(MAC, 7).unwrap();
        let d = c.discover();
        // Another transaction, another client, garbage, an ACK before any offer.
        let mut other = Client::new(MAC, 8).unwrap();
        let od = other.discover();
        assert_eq!(
            c.on_reply(&reply(&od, MessageType::Offer, ME, true)),
            Step::Ignore
        );
        let mut stranger = Client::new(MacAddr([2, 0, 0, 0, 0, 1]), 7).unwrap();
        let sd = stranger.discover();
        assert_eq!(
            c.on_reply(&reply(&sd, MessageType::Offer, ME, true)),
            Step::Ignore
        );
        assert_eq!(c.on_reply(b"\x02garbage"), Step::Ignore);
        assert_eq!(c.on_reply(&[]), Step::Ignore);
        assert_eq!(
            c.on_reply(&reply(&d, MessageType::Ack, ME, true)),
            Step::Ignore
        );
        // Our own broadcast request, looped back, is not a reply.
        assert_eq!(c.on_reply(&d), Step::Ignore);
        // An offer without an address is ignored.
        assert_eq!(
            c.on_reply(&reply(&d, MessageType::Offer, Ipv4Addr::UNSPECIFIED, true)),
            Step::Ignore
        );
        let Step::Send(r) = c.on_reply(&reply(&d, MessageType::Offer, ME, true)) else {
            panic!()
        };
        // An ACK for another address is not ours.
        assert_eq!(
            c.on_reply(&reply(
                &r,
                MessageType::Ack,
                Ipv4Addr::new(10, 0, 2, 16),
                true
            )),
            Step::Ignore
        );
        match c.on_reply(&reply(&r, MessageType::Nak, Ipv4Addr::UNSPECIFIED, false)) {
            Step::Restart(why, again) => {
                assert_eq!(why, "server 10.0.2.2 refused: no reason given");
                let m = Message::from_bytes(&again).unwrap();
                assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
            }
            other => panic!("{other:?}"),
        }
        // Selecting again: a new offer is taken.
        assert!(matches!(
            c.on_reply(&reply(&d, MessageType::Offer, ME, true)),
            Step::Send(_)
        ));
    }

    /// A NAK's text cannot forge console lines: control characters are replaced, the length
    /// bounded.
    #[test]
    fn a_naks_reason_is_one_printable_line() {
        let mut c = Client::new(MAC, 7).unwrap();
        let d = c.discover();
        let Step::Send(r) = c.on_reply(&reply(&d, MessageType::Offer, ME, true)) else {
            panic!()
        };
        let mut nak = Message::from_bytes(&reply(&r, MessageType::Nak, ME, false)).unwrap();
        let text = format!("bad\napkovl signature verified\x1b[2J{}", "x".repeat(300));
        nak.opts_mut().insert(DhcpOption::Message(text));
        match c.on_reply(&nak.to_vec().unwrap()) {
            Step::Restart(why, _) => {
                assert!(
                    why.starts_with("server 10.0.2.2 refused: bad?apkovl signature verified?[2Jxx")
                );
                assert_eq!(
                    why.len(),
                    "server 10.0.2.2 refused: ".len() + MAX_SERVER_TEXT
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Options whose length dhcproto only debug-asserts are refused before decoding; other
    /// lengths and truncated option lists pass to the decoder.
    #[test]
    fn option_lengths_are_checked_before_decoding() {
        let mut c = Client::new(MAC, 7).unwrap();
        let d = c.discover();
        let offer = reply(&d, MessageType::Offer, ME, true);
        let end = offer.len() - 1;
        assert_eq!(offer[end], 255);
        for (code, len) in [
            (80u8, 1u8),
            (81, 2),
            (94, 2),
            (151, 0),
            (152, 3),
            (153, 5),
            (154, 3),
            (155, 8),
        ] {
            let mut bad = offer[..end].to_vec();
            bad.extend([code, len]);
            bad.extend(std::iter::repeat_n(0u8, usize::from(len)));
            bad.push(255);
            assert!(!options_sane(&bad), "option {code} length {len}");
            assert_eq!(c.on_reply(&bad), Step::Ignore);
        }
        // A hardware address length over chaddr's 16 bytes (dhcproto's chaddr() would panic).
        let mut long = offer.clone();
        long[2] = 105;
        assert_eq!(c.on_reply(&long), Step::Ignore);
        // dhcproto joins adjacent options of one code (RFC 3396): two well-formed client
        // interface options in a row make one of length 6; two halves of a time make one of 4.
        let mut joined = offer[..end].to_vec();
        joined.extend([94, 3, 1, 2, 3, 94, 3, 4, 5, 6, 255]);
        assert!(!options_sane(&joined));
        assert_eq!(c.on_reply(&joined), Step::Ignore);
        let mut halves = offer[..end].to_vec();
        halves.extend([
            154, 2, 0, 0, 154, 2, 0, 1, 94, 3, 1, 2, 3, 0, 94, 3, 4, 5, 6, 255,
        ]);
        assert!(options_sane(&halves));
        let mut ok = offer[..end].to_vec();
        ok.extend([80, 0, 81, 3, 0, 0, 0, 255]);
        assert!(options_sane(&ok));
        assert!(options_sane(&offer[..end - 3]));
        assert!(options_sane(&[]));
        assert!(matches!(c.on_reply(&offer), Step::Send(_)));
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        for w in ATTEMPT_TIMEOUTS.windows(2) {
            assert!(w[1] == w[0] * 2 || w[1] == w[0], "{w:?}");
        }
        let total: Duration = ATTEMPT_TIMEOUTS.iter().sum();
        assert_eq!(total, Duration::from_secs(30));
    }
}
