//! The network options of the command line: `ip=` (the kernel's nfsroot syntax, as Alpine reads
//! it) and `BOOTIF=` (the MAC address PXELINUX and iPXE pass), docs/boot.md "Network".
use std::net::Ipv4Addr;

/// Whether `value` is a URL the init would have to download (`http://`, `https://`, `ftp://`).
pub fn is_url(value: &str) -> bool {
    ["http://", "https://", "ftp://"]
        .iter()
        .any(|p| value.starts_with(p))
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parses six hex octets separated by `sep` (`aa:bb:..` or `aa-bb-..`), any case.
    pub fn parse_with(text: &str, sep: char) -> Option<Self> {
        let mut out = [0u8; 6];
        let mut parts = text.split(sep);
        for o in &mut out {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *o = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(out))
    }

    /// `BOOTIF=01-aa-bb-cc-dd-ee-ff` (as PXELINUX and iPXE write it): the leading hardware
    /// type must be `01` (Ethernet) and is dropped, as Alpine does.
    pub fn parse_bootif(text: &str) -> Option<Self> {
        Self::parse_with(text.trim().strip_prefix("01-")?, '-')
    }
}

impl std::fmt::Display for MacAddr {
    /// Lowercase, colon separated (`52:54:00:12:34:56`), as `/sys/class/net/*/address` and
    /// Alpine's `{MAC}` substitution.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A static address from `ip=CLIENT::GW:NETMASK:HOSTNAME:DEVICE:off:DNS0:DNS1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticIp {
    /// CLIENT.
    pub address: Ipv4Addr,
    /// NETMASK as a prefix length.
    pub prefix: u8,
    /// GW (default route), when given.
    pub gateway: Option<Ipv4Addr>,
}

/// What `ip=` asks for (docs/boot.md, "Network").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpSpec {
    /// `ip=off` / `ip=none`: no network, even for a URL.
    Off,
    /// Configure an interface: by DHCP (`static_ip: None`) or with a static address.
    On {
        /// DEVICE: the interface to use (else `BOOTIF=`, else the first with a link).
        device: Option<String>,
        /// `None`: DHCP.
        static_ip: Option<StaticIp>,
        /// DNS0, DNS1: name servers (added to those DHCP hands out).
        dns: Vec<Ipv4Addr>,
    },
}

impl IpSpec {
    /// `ip=dhcp` on whichever interface gets chosen.
    pub fn dhcp() -> Self {
        Self::On {
            device: None,
            static_ip: None,
            dns: Vec::new(),
        }
    }

    /// Parses an `ip=` value. `Err` says why the value cannot be used.
    pub fn parse(value: &str) -> Result<Self, String> {
        let autoconf = |a: &str| matches!(a, "dhcp" | "on" | "any" | "both" | "bootp");
        match value {
            "off" | "none" | "no" => return Ok(Self::Off),
            v if autoconf(v) || v == "yes" => return Ok(Self::dhcp()),
            _ => {}
        }
        let f: Vec<&str> = value.split(':').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        if f.len() > 10 {
            return Err(format!(
                "ip={value}: more than 10 fields (CLIENT:SERVER:GW:NETMASK:HOSTNAME:DEVICE:AUTOCONF:DNS0:DNS1:NTP)"
            ));
        }
        let addr = |i: usize, name: &str| -> Result<Option<Ipv4Addr>, String> {
            match field(i) {
                "" => Ok(None),
                s => s
                    .parse::<Ipv4Addr>()
                    .map(Some)
                    .map_err(|_| format!("ip={value}: {name} '{s}' is not an IPv4 address")),
            }
        };
        let device = match field(5) {
            "" => None,
            d if d.contains('/') || d.contains(char::is_whitespace) || d.len() > 15 => {
                return Err(format!("ip={value}: DEVICE '{d}' is not an interface name"))
            }
            d => Some(d.to_string()),
        };
        let mut dns = Vec::new();
        for (i, name) in [(7, "DNS0"), (8, "DNS1")] {
            dns.extend(addr(i, name)?);
        }
        let client = addr(0, "CLIENT")?;
        let gateway = addr(2, "GW")?;
        let prefix = match field(3) {
            "" => None,
            m => Some(netmask_prefix(m).ok_or_else(|| {
                format!("ip={value}: NETMASK '{m}' is not a netmask (255.255.255.0 or 24)")
            })?),
        };
        let static_ip = match field(6) {
            a if autoconf(a) => None,
            "" | "off" | "none" | "static" => match (client, prefix) {
                (Some(address), Some(prefix)) => Some(StaticIp {
                    address,
                    prefix,
                    gateway,
                }),
                (None, None) => None,
                _ => {
                    return Err(format!(
                        "ip={value}: a static address needs both CLIENT and NETMASK"
                    ))
                }
            },
            other => {
                return Err(format!(
                    "ip={value}: AUTOCONF '{other}' is not supported (dhcp or off)"
                ))
            }
        };
        Ok(Self::On {
            device,
            static_ip,
            dns,
        })
    }
}

/// `255.255.255.0` or `24` → 24; a mask whose ones are not contiguous is refused.
pub fn netmask_prefix(mask: &str) -> Option<u8> {
    if let Ok(n) = mask.parse::<u8>() {
        return (n <= 32).then_some(n);
    }
    let m = u32::from(mask.parse::<Ipv4Addr>().ok()?);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootif_forms() {
        let m = MacAddr([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
        assert_eq!(MacAddr::parse_bootif("01-52-54-00-AB-cd-ef"), Some(m));
        assert_eq!(m.to_string(), "52:54:00:ab:cd:ef");
        for bad in [
            "",
            "52-54-00-ab-cd-ef",
            "06-52-54-00-ab-cd-ef",
            "01-52-54-00-ab-cd",
            "01-52-54-00-ab-cd-eg",
            "01-52-54-00-ab-cd-ef-00",
            "01-525-4-00-ab-cd-ef",
            "52:54:00:ab:cd:ef",
        ] {
            assert_eq!(MacAddr::parse_bootif(bad), None, "{bad}");
        }
        assert_eq!(MacAddr::parse_with("52:54:00:AB:CD:EF", ':'), Some(m));
    }

    #[test]
    fn ip_keywords() {
        for v in ["dhcp", "on", "any", "both", "bootp", "yes"] {
            assert_eq!(IpSpec::parse(v), Ok(IpSpec::dhcp()), "{v}");
        }
        for v in ["off", "none", "no"] {
            assert_eq!(IpSpec::parse(v), Ok(IpSpec::Off), "{v}");
        }
    }

    #[test]
    fn ip_static_kernel_form() {
        assert_eq!(
            IpSpec::parse("10.0.2.15::10.0.2.2:255.255.255.0:fw1:eth0:off:10.0.2.3:1.1.1.1"),
            Ok(IpSpec::On {
                device: Some("eth0".into()),
                static_ip: Some(StaticIp {
                    address: Ipv4Addr::new(10, 0, 2, 15),
                    prefix: 24,
                    gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                }),
                dns: vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)],
            })
        );
        // No gateway, prefix-length mask, fields left out at the end.
        assert_eq!(
            IpSpec::parse("192.168.1.9:::16"),
            Ok(IpSpec::On {
                device: None,
                static_ip: Some(StaticIp {
                    address: Ipv4Addr::new(192, 168, 1, 9),
                    prefix: 16,
                    gateway: None,
                }),
                dns: vec![],
            })
        );
        // DHCP on a named interface, with an extra name server.
        assert_eq!(
            IpSpec::parse(":::::eth1:dhcp:9.9.9.9"),
            Ok(IpSpec::On {
                device: Some("eth1".into()),
                static_ip: None,
                dns: vec![Ipv4Addr::new(9, 9, 9, 9)],
            })
        );
        // Neither CLIENT nor NETMASK and no AUTOCONF: the interface only (Alpine configures
        // nothing; here that is DHCP on it).
        assert_eq!(
            IpSpec::parse(":::::eth0"),
            Ok(IpSpec::On {
                device: Some("eth0".into()),
                static_ip: None,
                dns: vec![]
            })
        );
    }

    #[test]
    fn ip_errors_name_the_field() {
        let e = |v: &str| IpSpec::parse(v).unwrap_err();
        assert!(e("10.0.2.x::::::off").contains("CLIENT '10.0.2.x'"));
        assert!(e("10.0.2.15:::255.0.255.0").contains("NETMASK '255.0.255.0'"));
        assert!(e("10.0.2.15:::33").contains("NETMASK"));
        assert!(e("10.0.2.15::::::off").contains("both CLIENT and NETMASK"));
        assert!(e("::::::rarp").contains("AUTOCONF 'rarp'"));
        assert!(e(":::::../x").contains("DEVICE"));
        assert!(e("a:b:c:d:e:f:g:h:i:j:k").contains("more than 10 fields"));
        assert!(e("10.0.2.15::gw:24").contains("GW 'gw'"));
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask_prefix("255.255.255.0"), Some(24));
        assert_eq!(netmask_prefix("255.255.255.255"), Some(32));
        assert_eq!(netmask_prefix("0.0.0.0"), Some(0));
        assert_eq!(netmask_prefix("255.255.240.0"), Some(20));
        assert_eq!(netmask_prefix("8"), Some(8));
        assert_eq!(netmask_prefix("255.0.255.0"), None);
        assert_eq!(netmask_prefix("40"), None);
    }
}
