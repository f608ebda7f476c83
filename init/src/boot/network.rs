//! The network phases (docs/boot.md, "Network"), when `ip=` or a URL asks for the network
//! ([`plan::network::network_request`]): "network link" loads the drivers of the cards present
//! (coldplug again: media discovery may have stopped before they were asked for), brings the
//! chosen interface up and waits for its carrier; "dhcp" (or "network address" for a static `ip=`) configures the
//! address, the default route and the name servers (`/etc/resolv.conf` of the initramfs, for the
//! downloads; the finish phase copies it into the new root).
use std::hash::Hasher;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::{Boot, BootError};
use crate::cmdline::{MacAddr, StaticIp};
use crate::dhcp::{self, Client, Lease, Step};
use crate::media;
use crate::plan::network::{self as netplan, InterfaceError, NetRequest, Nic};
use crate::sys::{self, net::DhcpSocket, net::NetError, net::Rtnl};
use crate::timeline;

/// How long the phase waits for an interface and its link (Alpine polls 4 s; cards that
/// negotiate slowly need longer).
pub const LINK_WAIT: Duration = Duration::from_secs(10);
/// How often the interfaces are looked at while waiting.
const LINK_POLL: Duration = Duration::from_millis(100);
/// The initramfs's resolver configuration (read by the apk core's HTTP client).
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Connecting to a boot server (each of the client's tries).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence of a boot server.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest download accepted (bytes per second over each [`READ_TIMEOUT`]): a 512 kbit/s
/// branch-office line does twice that; a server trickling bytes cannot hold the boot forever.
const MIN_RATE: u64 = 32 << 10;

/// How the init talks to its servers (`alpine_repo=`, `apkovl=`, `modloop=` URLs): the
/// certificate authorities of the initramfs (`etc/ssl/certs/ca-certificates.crt`: the `network`
/// feature copies the build host's bundle, `mkinitfs --ca FILE` adds one) for HTTPS, and the
/// boot's timeouts and minimum rate. Read when a download is about to start, never on a medium boot.
pub fn http_options() -> apk::http::ClientOptions {
    apk::http::ClientOptions {
        ca: apk::http::CaBundle::system(Path::new("/")),
        connect_timeout: CONNECT_TIMEOUT,
        read_timeout: READ_TIMEOUT,
        min_rate: MIN_RATE,
        ..Default::default()
    }
}

/// Why the network could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No usable interface (after the link wait).
    #[error("{reason}: {source}")]
    Interface {
        /// The option that asked for the network.
        reason: String,
        /// Why.
        source: InterfaceError,
    },
    /// A configuration step failed.
    #[error("{0}")]
    Sys(#[from] NetError),
    /// The interface has no Ethernet address to ask DHCP with.
    #[error("{0}: no Ethernet address, DHCP needs one")]
    NoMac(String),
    /// The DHCP client could not be set up (a bug).
    #[error("{0}")]
    Bug(String),
    /// No DHCP server answered (or every offer was refused).
    #[error("{reason}: no DHCP lease on {iface} after {attempts} attempts ({secs} s){last}")]
    NoLease {
        /// The option that asked for the network.
        reason: String,
        /// The interface.
        iface: String,
        /// DISCOVERs sent.
        attempts: usize,
        /// Seconds waited in all.
        secs: u64,
        /// The last refusal, if a server refused (`; server ... refused: ...`).
        last: String,
    },
}

/// The configured network, for the finish phase and the overlay URL (`{MAC}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// The interface.
    pub iface: String,
    /// Its Ethernet address.
    pub mac: Option<MacAddr>,
    /// `resolv.conf` text, when there are name servers.
    pub resolv_conf: Option<String>,
}

/// A transaction id that differs between machines and boots: the card's address and the boot
/// clock in nanoseconds, hashed. Not from the kernel's random source: `getrandom` blocks until
/// the kernel's pool is initialised, which early in a boot (and under emulation) can take
/// minutes. The id only tells one client's replies from another's.
fn transaction_id(mac: MacAddr) -> u32 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(&mac.0);
    h.write_u128(sys::boottime().as_nanos());
    h.finish() as u32
}

fn nics() -> Vec<Nic> {
    sys::net::links()
        .into_iter()
        .map(|l| Nic {
            mac: l.mac.as_deref().and_then(|m| MacAddr::parse_with(m, ':')),
            name: l.name,
            index: l.index,
            physical: l.physical,
        })
        .collect()
}

impl Boot {
    /// The network phases; nothing (and no timeline row) when the network is not needed.
    pub(super) fn bring_up_network(&mut self) -> Result<(), BootError> {
        self.network = None;
        let Some(req) = netplan::network_request(&self.cfg) else {
            return Ok(());
        };
        self.phase("network link");
        let mut rtnl = Rtnl::open().map_err(NetworkError::from)?;
        let (nic, waited) = self.wait_for_link(&req, &mut rtnl)?;
        self.timeline.note(format!(
            "{} {}, link after {}",
            nic.name,
            nic.mac.map(|m| m.to_string()).unwrap_or_default(),
            timeline::secs(waited)
        ));
        let (address, prefix, gateway, mut dns, domain) = match &req.static_ip {
            Some(StaticIp {
                address,
                prefix,
                gateway,
            }) => {
                self.phase("network address");
                log::info!("Setting IP ({})", nic.name);
                (*address, *prefix, *gateway, Vec::new(), None)
            }
            None => {
                self.phase("dhcp");
                let lease = self.dhcp(&req, &nic)?;
                let note = format!(
                    "{}/{} from {}, lease {}",
                    lease.address,
                    lease.prefix,
                    lease.server,
                    lease
                        .lease
                        .map(|l| format!("{} s", l.as_secs()))
                        .unwrap_or_else(|| "infinite".into())
                );
                self.timeline.note(note);
                (
                    lease.address,
                    lease.prefix,
                    lease.router,
                    lease.dns,
                    lease.domain,
                )
            }
        };
        rtnl.add_address(&nic.name, nic.index, address, prefix)
            .map_err(NetworkError::from)?;
        if let Some(gw) = gateway {
            let onlink = !same_subnet(address, gw, prefix);
            rtnl.add_default_route(&nic.name, nic.index, gw, onlink)
                .map_err(NetworkError::from)?;
        }
        dns.extend(req.dns.iter().copied());
        let resolv = netplan::resolv_conf(&dns, domain.as_deref());
        if let Some(text) = &resolv {
            sys::write_file(Path::new(RESOLV_CONF), text.as_bytes())?;
        }
        log::info!(
            "{}: {address}/{prefix}{}{}",
            nic.name,
            gateway.map(|g| format!(", router {g}")).unwrap_or_default(),
            if dns.is_empty() {
                String::new()
            } else {
                format!(
                    ", DNS {}",
                    dns.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        );
        self.network = Some(Configured {
            iface: nic.name.clone(),
            mac: nic.mac,
            resolv_conf: resolv,
        });
        Ok(())
    }

    /// Brings the candidate interfaces up and returns the first with a carrier (after
    /// [`LINK_WAIT`], the first candidate, as Alpine does); the others go down again.
    fn wait_for_link(
        &mut self,
        req: &NetRequest,
        rtnl: &mut Rtnl,
    ) -> Result<(Nic, Duration), NetworkError> {
        let start = sys::boottime();
        if let Some(lo) = sys::net::links().into_iter().find(|l| l.name == "lo") {
            rtnl.set_link(&lo.name, lo.index, true)?;
        }
        let mut upped: Vec<Nic> = Vec::new();
        let chosen = loop {
            // Media discovery may have ended before a card's driver was asked for (virtio_pci's
            // devices appear after coldplug loaded it): load what is present now.
            if let Some(loader) = self.drivers() {
                media::coldplug(loader);
            }
            let nics = nics();
            let now = sys::boottime();
            let late = now.saturating_sub(start) >= LINK_WAIT;
            match netplan::choose_interfaces(req.device.as_deref(), self.cfg.bootif, &nics) {
                Ok(names) => {
                    let cands: Vec<&Nic> = names
                        .iter()
                        .filter_map(|n| nics.iter().find(|x| &x.name == n))
                        .collect();
                    for c in &cands {
                        if !upped.iter().any(|u| u.name == c.name) {
                            rtnl.set_link(&c.name, c.index, true)?;
                            upped.push((*c).clone());
                        }
                    }
                    if let Some(c) = cands.iter().find(|c| sys::net::has_carrier(&c.name)) {
                        break (*c).clone();
                    }
                    if late {
                        let first = cands[0].clone();
                        log::warn!(
                            "no link on {} after {}; trying {} anyway",
                            names.join(", "),
                            timeline::secs(LINK_WAIT),
                            first.name
                        );
                        break first;
                    }
                }
                Err(source) if late => {
                    return Err(NetworkError::Interface {
                        reason: req.reason.clone(),
                        source,
                    })
                }
                Err(_) => {}
            }
            std::thread::sleep(LINK_POLL);
        };
        for other in upped.iter().filter(|u| u.name != chosen.name) {
            if let Err(e) = rtnl.set_link(&other.name, other.index, false) {
                log::warn!("{e}");
            }
        }
        Ok((chosen, sys::boottime().saturating_sub(start)))
    }

    /// DISCOVER, OFFER, REQUEST, ACK on `nic`, with [`dhcp::ATTEMPT_TIMEOUTS`].
    fn dhcp(&mut self, req: &NetRequest, nic: &Nic) -> Result<Lease, NetworkError> {
        let mac = nic
            .mac
            .ok_or_else(|| NetworkError::NoMac(nic.name.clone()))?;
        log::info!("Obtaining IP via DHCP ({})", nic.name);
        let sock = DhcpSocket::open(&nic.name)?;
        let mut client = Client::new(mac, transaction_id(mac)).map_err(NetworkError::Bug)?;
        let start = sys::boottime();
        let mut last = String::new();
        for (n, timeout) in dhcp::ATTEMPT_TIMEOUTS.iter().enumerate() {
            if n > 0 {
                log::info!(
                    "DHCP: no lease on {} yet, retrying (attempt {} of {})",
                    nic.name,
                    n + 1,
                    dhcp::ATTEMPT_TIMEOUTS.len()
                );
            }
            client.elapsed = sys::boottime().saturating_sub(start).as_secs().min(65535) as u16;
            sock.broadcast(&client.discover())?;
            log::debug!(
                "DHCP: DISCOVER sent on {} (xid {:08x})",
                nic.name,
                client.xid()
            );
            let until = sys::boottime() + *timeout;
            loop {
                let now = sys::boottime();
                if now >= until {
                    break;
                }
                let Some(packet) = sock.receive(until - now, dhcp::MAX_MESSAGE)? else {
                    continue;
                };
                log::debug!("DHCP: {} bytes received on {}", packet.len(), nic.name);
                match client.on_reply(&packet) {
                    Step::Ignore => {}
                    Step::Send(msg) => sock.broadcast(&msg)?,
                    Step::Restart(why, msg) => {
                        log::warn!("DHCP on {}: {why}", nic.name);
                        last = format!("; {why}");
                        sock.broadcast(&msg)?;
                    }
                    Step::Bound(lease) => return Ok(lease),
                }
            }
        }
        Err(NetworkError::NoLease {
            reason: req.reason.clone(),
            iface: nic.name.clone(),
            attempts: dhcp::ATTEMPT_TIMEOUTS.len(),
            secs: dhcp::ATTEMPT_TIMEOUTS.iter().sum::<Duration>().as_secs(),
            last,
        })
    }
}

/// Whether `b` is in `a`'s subnet of `prefix` bits.
fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let a = Ipv4Addr::new(10, 0, 2, 15);
        assert!(same_subnet(a, Ipv4Addr::new(10, 0, 2, 2), 24));
        assert!(!same_subnet(a, Ipv4Addr::new(10, 0, 3, 2), 24));
        assert!(same_subnet(a, Ipv4Addr::new(10, 0, 3, 2), 16));
        assert!(!same_subnet(a, Ipv4Addr::new(10, 0, 2, 1), 32));
        assert!(same_subnet(a, Ipv4Addr::new(192, 168, 0, 1), 0));
    }

    #[test]
    fn no_lease_line_names_the_interface_and_the_wait() {
        let e = NetworkError::NoLease {
            reason: "alpine_repo=http://10.0.2.2:8080/apks".into(),
            iface: "eth0".into(),
            attempts: 5,
            secs: 30,
            last: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "alpine_repo=http://10.0.2.2:8080/apks: no DHCP lease on eth0 after 5 attempts (30 s)"
        );
    }
}
