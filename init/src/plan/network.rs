//! Network decisions (docs/boot.md, "Network"): whether the boot needs the network, which
//! interface it uses, and what goes into `resolv.conf`. The executor ([`crate::boot`]) brings the
//! link up, runs DHCP and configures the address.
use std::net::Ipv4Addr;

use crate::cmdline::{ApkovlSpec, BootConfig, IpSpec, MacAddr, ModloopSpec, StaticIp};
use apk::http::url::display;

pub use crate::cmdline::is_url;

/// What the network phase must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRequest {
    /// The option that asked for the network (`ip=dhcp`, `alpine_repo=http://...`), for messages.
    pub reason: String,
    /// The interface `ip=` named.
    pub device: Option<String>,
    /// `None`: DHCP.
    pub static_ip: Option<StaticIp>,
    /// Name servers from `ip=` (DNS0, DNS1).
    pub dns: Vec<Ipv4Addr>,
}

/// The network is configured when `ip=` is set (and not `off`), or, as `ip=dhcp`, when
/// `alpine_repo=`, `apkovl=` or `modloop=` holds a URL. `ip=off` wins over URLs.
pub fn network_request(cfg: &BootConfig) -> Option<NetRequest> {
    let url = cfg
        .alpine_repo
        .iter()
        .find(|r| is_url(r))
        .map(|r| format!("alpine_repo={}", display(r)))
        .or_else(|| match &cfg.apkovl {
            Some(ApkovlSpec::Url(u)) => Some(format!("apkovl={}", display(u))),
            _ => None,
        })
        .or_else(|| match &cfg.modloop {
            Some(ModloopSpec::Url(u)) => Some(format!("modloop={}", display(u))),
            _ => None,
        });
    match (&cfg.ip, url) {
        (Some(IpSpec::Off), _) | (None, None) => None,
        (None, Some(reason)) => Some(NetRequest {
            reason,
            device: None,
            static_ip: None,
            dns: Vec::new(),
        }),
        (
            Some(IpSpec::On {
                device,
                static_ip,
                dns,
            }),
            _,
        ) => Some(NetRequest {
            reason: match static_ip {
                Some(_) => "ip= (static)".to_string(),
                None => "ip=dhcp".to_string(),
            },
            device: device.clone(),
            static_ip: static_ip.clone(),
            dns: dns.clone(),
        }),
    }
}

/// A network interface as `/sys/class/net` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Kernel name (`eth0`).
    pub name: String,
    /// `ifindex`.
    pub index: u32,
    /// Its Ethernet address, when it has one.
    pub mac: Option<MacAddr>,
    /// Backed by a device (`/sys/class/net/NAME/device` exists): not `lo`, a bridge or a tunnel.
    pub physical: bool,
}

/// Why no interface can be used (yet: the executor asks again until the link wait ends).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceError {
    /// `ip=` named an interface that does not exist.
    #[error("ip=: interface {name} not found (interfaces: {})", list(.present))]
    NoSuchDevice {
        /// The name asked for.
        name: String,
        /// What exists.
        present: Vec<String>,
    },
    /// No interface has the `BOOTIF=` address.
    #[error("BOOTIF={mac}: no interface has this address (interfaces: {})", list(.present))]
    NoBootif {
        /// The address asked for.
        mac: MacAddr,
        /// What exists, with their addresses.
        present: Vec<String>,
    },
    /// No physical network interface at all (no driver for the card?).
    #[error(
        "no network interface found (is the card's driver in the initramfs's network feature?)"
    )]
    NoInterface,
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// The interfaces to try, in order: the one `ip=` names; else the one with the `BOOTIF=`
/// address; else every physical interface with an Ethernet address by `ifindex` (the executor
/// brings them all up and takes the first with a link, as Alpine does).
pub fn choose_interfaces(
    device: Option<&str>,
    bootif: Option<MacAddr>,
    nics: &[Nic],
) -> Result<Vec<String>, InterfaceError> {
    if let Some(name) = device {
        return match nics.iter().find(|n| n.name == name) {
            Some(n) => Ok(vec![n.name.clone()]),
            None => Err(InterfaceError::NoSuchDevice {
                name: name.to_string(),
                present: nics.iter().map(|n| n.name.clone()).collect(),
            }),
        };
    }
    if let Some(mac) = bootif {
        return match nics.iter().find(|n| n.mac == Some(mac)) {
            Some(n) => Ok(vec![n.name.clone()]),
            None => Err(InterfaceError::NoBootif {
                mac,
                present: nics
                    .iter()
                    .filter(|n| n.physical)
                    .map(|n| match n.mac {
                        Some(m) => format!("{} {m}", n.name),
                        None => n.name.clone(),
                    })
                    .collect(),
            }),
        };
    }
    let mut phys: Vec<&Nic> = nics
        .iter()
        .filter(|n| n.physical && n.mac.is_some())
        .collect();
    phys.sort_by_key(|n| n.index);
    if phys.is_empty() {
        return Err(InterfaceError::NoInterface);
    }
    Ok(phys.into_iter().map(|n| n.name.clone()).collect())
}

/// `resolv.conf` for these name servers (duplicates dropped, at most 3 as the resolver reads)
/// and search domain; `None` when there is no name server.
pub fn resolv_conf(dns: &[Ipv4Addr], domain: Option<&str>) -> Option<String> {
    let mut seen: Vec<Ipv4Addr> = Vec::new();
    for d in dns {
        if !seen.contains(d) && !d.is_unspecified() && seen.len() < 3 {
            seen.push(*d);
        }
    }
    if seen.is_empty() {
        return None;
    }
    let mut out = String::new();
    if let Some(d) = domain.filter(|d| crate::cmdline::valid_hostname(d)) {
        out.push_str(&format!("search {d}\n"));
    }
    for d in seen {
        out.push_str(&format!("nameserver {d}\n"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(name: &str, index: u32, mac: Option<&str>, physical: bool) -> Nic {
        Nic {
            name: name.into(),
            index,
            mac: mac.and_then(|m| MacAddr::parse_with(m, ':')),
            physical,
        }
    }

    #[test]
    fn network_is_wanted_for_ip_or_a_url() {
        let r = |s: &str| network_request(&BootConfig::from_cmdline(s));
        assert_eq!(r("quiet"), None);
        assert_eq!(r("alpine_repo=/media/usb/apks"), None);
        let req = r("alpine_repo=http://10.0.2.2:8080/apks").unwrap();
        assert_eq!(req.reason, "alpine_repo=http://10.0.2.2:8080/apks");
        assert_eq!((req.device, req.static_ip), (None, None));
        assert_eq!(
            r("apkovl=https://x/{MAC}.apkovl.tar.gz").unwrap().reason,
            "apkovl=https://x/{MAC}.apkovl.tar.gz"
        );
        assert_eq!(
            r("modloop=http://x/m").unwrap().reason,
            "modloop=http://x/m"
        );
        assert_eq!(r("ip=dhcp").unwrap().reason, "ip=dhcp");
        // ip=off wins over a URL.
        assert_eq!(r("ip=off alpine_repo=http://x/apks"), None);
        let req = r("ip=10.0.2.15::10.0.2.2:24::eth0:off:10.0.2.3").unwrap();
        assert_eq!(req.device.as_deref(), Some("eth0"));
        assert_eq!(req.dns, vec![Ipv4Addr::new(10, 0, 2, 3)]);
        assert_eq!(req.static_ip.unwrap().prefix, 24);
    }

    #[test]
    fn interface_choice() {
        let nics = [
            nic("lo", 1, Some("00:00:00:00:00:00"), false),
            nic("eth1", 3, Some("52:54:00:00:00:02"), true),
            nic("eth0", 2, Some("52:54:00:00:00:01"), true),
            nic("br0", 4, Some("52:54:00:00:00:09"), false),
        ];
        assert_eq!(
            choose_interfaces(None, None, &nics).unwrap(),
            ["eth0", "eth1"]
        );
        assert_eq!(
            choose_interfaces(Some("eth1"), None, &nics).unwrap(),
            ["eth1"]
        );
        let mac = MacAddr::parse_with("52:54:00:00:00:02", ':');
        assert_eq!(choose_interfaces(None, mac, &nics).unwrap(), ["eth1"]);
        // ip='s DEVICE wins over BOOTIF.
        assert_eq!(
            choose_interfaces(Some("eth0"), mac, &nics).unwrap(),
            ["eth0"]
        );
        assert_eq!(
            choose_interfaces(Some("eth7"), None, &nics)
                .unwrap_err()
                .to_string(),
            "ip=: interface eth7 not found (interfaces: lo, eth1, eth0, br0)"
        );
        let other = MacAddr::parse_with("52:54:00:00:00:07", ':');
        assert_eq!(
            choose_interfaces(None, other, &nics)
                .unwrap_err()
                .to_string(),
            "BOOTIF=52:54:00:00:00:07: no interface has this address \
             (interfaces: eth1 52:54:00:00:00:02, eth0 52:54:00:00:00:01)"
        );
        assert_eq!(
            choose_interfaces(None, None, &nics[..1]),
            Err(InterfaceError::NoInterface)
        );
    }

    #[test]
    fn resolv_conf_lines() {
        let a = Ipv4Addr::new(10, 0, 2, 3);
        let b = Ipv4Addr::new(9, 9, 9, 9);
        assert_eq!(resolv_conf(&[], Some("lan")), None);
        assert_eq!(
            resolv_conf(&[a, b, a], Some("example.org")).unwrap(),
            "search example.org\nnameserver 10.0.2.3\nnameserver 9.9.9.9\n"
        );
        assert_eq!(
            resolv_conf(&[a, Ipv4Addr::UNSPECIFIED], Some("bad domain")).unwrap(),
            "nameserver 10.0.2.3\n"
        );
        let many = [a, b, Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)];
        assert_eq!(resolv_conf(&many, None).unwrap().lines().count(), 3);
    }
}
