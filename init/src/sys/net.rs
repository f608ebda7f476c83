//! Network configuration: the interfaces in `/sys/class/net`, links up and down, IPv4 addresses
//! and the default route over rtnetlink (`NETLINK_ROUTE`, the messages `ip link set up`,
//! `ip addr add` and `ip route add default` send), and the DHCP client's UDP socket.
//!
//! The rtnetlink messages are built by hand: a header, a fixed part and attributes, each
//! request acknowledged by the kernel (an `NLMSG_ERROR` with errno 0) before the next.
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};

/// Where the kernel lists network interfaces.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

/// A network configuration step that failed, naming the interface and the step.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The rtnetlink socket could not be opened.
    #[error("rtnetlink socket: {0}")]
    Open(Errno),
    /// The kernel refused or did not answer a request.
    #[error("{what}: {errno}")]
    Request {
        /// `eth0: link up`, `eth0: address 10.0.2.15/24`, ...
        what: String,
        /// Why.
        errno: Errno,
    },
    /// The DHCP socket could not be set up or used.
    #[error("{iface}: DHCP socket: {source}")]
    Dhcp {
        /// The interface.
        iface: String,
        /// Why.
        source: std::io::Error,
    },
}

/// One interface of `/sys/class/net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Kernel name.
    pub name: String,
    /// `ifindex`.
    pub index: u32,
    /// `address` (`52:54:00:12:34:56`), for Ethernet-type interfaces (`type` 1).
    pub mac: Option<String>,
    /// A `device` link exists (a real card, not `lo` or a virtual interface).
    pub physical: bool,
}

fn read_small(path: &Path) -> Option<String> {
    super::read_file(path, 4096)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
}

/// The interfaces the kernel has now (unreadable entries are left out).
pub fn links() -> Vec<Link> {
    let Ok(rd) = std::fs::read_dir(SYS_CLASS_NET) else {
        return Vec::new();
    };
    let mut out: Vec<Link> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = e.path();
            let index = read_small(&dir.join("ifindex"))?.parse().ok()?;
            let ether = read_small(&dir.join("type")).as_deref() == Some("1");
            Some(Link {
                mac: ether.then(|| read_small(&dir.join("address"))).flatten(),
                physical: dir.join("device").exists(),
                name,
                index,
            })
        })
        .collect();
    out.sort_by_key(|l| l.index);
    out
}

/// Whether the interface is up with a carrier (`/sys/class/net/NAME/carrier` reads `1`; it is
/// unreadable while the interface is down).
pub fn has_carrier(name: &str) -> bool {
    read_small(&Path::new(SYS_CLASS_NET).join(name).join("carrier")).as_deref() == Some("1")
}

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const AF_INET: u8 = 2;
const IFF_UP: u32 = 0x1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTNH_F_ONLINK: u32 = 4;
/// How long the kernel may take to acknowledge a request.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// An rtnetlink socket.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    /// Opens and binds the socket.
    pub fn open() -> Result<Self, NetError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(NetError::Open)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(NetError::Open)?;
        Ok(Self { fd, seq: 0 })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(
        &mut self,
        what: String,
        kind: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<(), NetError> {
        let fail = |errno| NetError::Request {
            what: what.clone(),
            errno,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        sendto(
            self.fd.as_raw_fd(),
            &msg,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(fail)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let ms =
                PollTimeout::try_from(ACK_TIMEOUT.as_millis() as i32).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, ms) {
                Ok(0) => return Err(fail(Errno::ETIMEDOUT)),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(fail(e)),
            }
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(fail(e)),
            };
            // Walk the messages of this datagram for the acknowledgement of our sequence number.
            let mut off = 0;
            while off + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
                if len < 16 || off + len > n {
                    break;
                }
                if kind == NLMSG_ERROR && seq == self.seq && len >= 20 {
                    let code =
                        i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap_or([0; 4]));
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(fail(Errno::from_raw(-code)))
                    };
                }
                off += len.next_multiple_of(4);
            }
        }
    }

    /// `ip link set NAME up` / `down`.
    pub fn set_link(&mut self, name: &str, index: u32, up: bool) -> Result<(), NetError> {
        let mut body = Vec::with_capacity(16);
        body.push(0); // ifi_family: AF_UNSPEC
        body.push(0);
        body.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
        body.extend_from_slice(&(index as i32).to_ne_bytes());
        body.extend_from_slice(&(if up { IFF_UP } else { 0 }).to_ne_bytes());
        body.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
        let what = format!("{name}: link {}", if up { "up" } else { "down" });
        self.request(what, RTM_NEWLINK, 0, &body)
    }

    /// `ip addr replace ADDRESS/PREFIX broadcast + dev NAME`.
    pub fn add_address(
        &mut self,
        name: &str,
        index: u32,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetError> {
        let mut body = vec![AF_INET, prefix, 0, RT_SCOPE_UNIVERSE];
        body.extend_from_slice(&index.to_ne_bytes());
        attr(&mut body, IFA_LOCAL, &address.octets());
        attr(&mut body, IFA_ADDRESS, &address.octets());
        if prefix < 31 {
            let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            let bcast = Ipv4Addr::from(u32::from(address) | host);
            attr(&mut body, IFA_BROADCAST, &bcast.octets());
        }
        let what = format!("{name}: address {address}/{prefix}");
        self.request(what, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &body)
    }

    /// `ip route replace default via GATEWAY dev NAME [onlink]` (`onlink` when the gateway is not
    /// in the interface's subnet).
    pub fn add_default_route(
        &mut self,
        name: &str,
        index: u32,
        gateway: Ipv4Addr,
        onlink: bool,
    ) -> Result<(), NetError> {
        let mut body = vec![
            AF_INET,
            0, // dst_len: default
            0, // src_len
            0, // tos
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ];
        body.extend_from_slice(&(if onlink { RTNH_F_ONLINK } else { 0 }).to_ne_bytes());
        attr(&mut body, RTA_GATEWAY, &gateway.octets());
        attr(&mut body, RTA_OIF, &index.to_ne_bytes());
        let what = format!("{name}: default route via {gateway}");
        self.request(what, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &body)
    }
}

/// The DHCP client's socket: UDP port 68 bound to one interface, broadcasting to port 67.
#[derive(Debug)]
pub struct DhcpSocket {
    sock: UdpSocket,
    iface: String,
}

impl DhcpSocket {
    /// Opens the socket on `iface` (which may have no address yet).
    pub fn open(iface: &str) -> Result<Self, NetError> {
        let fail = |source| NetError::Dhcp {
            iface: iface.to_string(),
            source,
        };
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).map_err(fail)?;
        sock.set_broadcast(true).map_err(fail)?;
        setsockopt(&sock, sockopt::BindToDevice, &OsString::from(iface))
            .map_err(|e| fail(std::io::Error::from(e)))?;
        Ok(Self {
            sock,
            iface: iface.to_string(),
        })
    }

    /// Broadcasts one message to the servers.
    pub fn broadcast(&self, msg: &[u8]) -> Result<(), NetError> {
        self.sock
            .send_to(msg, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67))
            .map(|_| ())
            .map_err(|source| NetError::Dhcp {
                iface: self.iface.clone(),
                source,
            })
    }

    /// Waits up to `timeout` for a datagram (at most `max` bytes kept): `None` when none came.
    pub fn receive(&self, timeout: Duration, max: usize) -> Result<Option<Vec<u8>>, NetError> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.sock
            .set_read_timeout(Some(timeout))
            .map_err(|source| NetError::Dhcp {
                iface: self.iface.clone(),
                source,
            })?;
        let mut buf = vec![0u8; max];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(NetError::Dhcp {
                iface: self.iface.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded() {
        let mut b = Vec::new();
        attr(&mut b, IFA_LOCAL, &[10, 0, 2, 15]);
        assert_eq!(b.len(), 8);
        attr(&mut b, 9, &[1]);
        assert_eq!(b.len(), 16);
        assert_eq!(u16::from_ne_bytes([b[8], b[9]]), 5);
    }

    #[test]
    fn loopback_is_listed_and_not_physical() {
        // Every Linux network namespace has `lo`.
        let links = links();
        let lo = links.iter().find(|l| l.name == "lo").expect("lo");
        assert!(!lo.physical);
        assert_eq!(lo.mac, None, "lo is not an Ethernet interface (type 772)");
    }
}
