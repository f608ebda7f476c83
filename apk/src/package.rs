//! Package metadata: identities (`C:`), `.PKGINFO` parsing and the index letters shared by
//! `APKINDEX` and the installed database (apk-format.md §1.8, §3).

use crate::dep::{self, Dependency};
use crate::text::Text;
use base64::Engine;
use std::fmt;

/// A package identity or file checksum: `Q1`+base64(SHA-1) normally.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Checksum(pub Vec<u8>);

impl Checksum {
    /// Parse `Q1...`/`Q2...` (base64), `X1...`/`X2...` (hex) or a legacy 32-hex MD5.
    ///
    /// The base64 decoder is apk-tools': the bits of the last character beyond the digest's length
    /// are ignored, so `Q1` values written by other tools with non-zero trailing bits load (the
    /// identity is the decoded bytes; it prints back canonically).
    pub fn parse(s: &str) -> Option<Self> {
        let b64 = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let bytes = if let Some(r) = s.strip_prefix("Q1").or_else(|| s.strip_prefix("Q2")) {
            b64.decode(r).ok()?
        } else if let Some(r) = s.strip_prefix("X1").or_else(|| s.strip_prefix("X2")) {
            hex::decode(r).ok()?
        } else if s.len() == 32 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(s).ok()?
        } else {
            return None;
        };
        match (bytes.len(), s.as_bytes()[0]) {
            (20, b'Q' | b'X') | (32, b'Q' | b'X') | (16, _) => Some(Checksum(bytes)),
            _ => None,
        }
    }

    /// Whether this identity names the package whose signed bytes (the control member, or control
    /// and data for packages without a `datahash`) are `covered`, for every kind apk-tools knows:
    /// `Q1`/`X1` the SHA-1 of those bytes, `Q2`/`X2` their SHA-256 (apk v3), and a legacy 32-hex
    /// value the first 16 bytes of their SHA-1 (what apk-tools 2.14 compares it with; an MD5 is
    /// refused there too). An empty identity identifies nothing (docs/apk.md, "Trust").
    pub fn identifies(&self, covered: &[u8]) -> bool {
        use sha1::{Digest, Sha1};
        match self.0.len() {
            20 => Sha1::digest(covered)[..] == self.0[..],
            32 => sha2::Sha256::digest(covered)[..] == self.0[..],
            16 => Sha1::digest(covered)[..16] == self.0[..],
            _ => false,
        }
    }

    /// Whether it holds anything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// First 8 hex digits (cache file names).
    pub fn short_hex(&self) -> String {
        hex::encode(&self.0[..self.0.len().min(4)])
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self.0.len() {
            20 => write!(f, "Q1{}", b64.encode(&self.0)),
            32 => write!(f, "Q2{}", b64.encode(&self.0)),
            16 => f.write_str(&hex::encode(&self.0)),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything apk knows about one package (an index entry, or `.PKGINFO`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    /// `C:` identity.
    pub identity: Checksum,
    /// `P:`
    pub name: Text,
    /// `V:`
    pub version: Text,
    /// `A:`
    pub arch: Option<Text>,
    /// `S:` size of the `.apk` file.
    pub size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:`
    pub description: Text,
    /// `U:`
    pub url: Text,
    /// `L:`
    pub license: Text,
    /// `o:`
    pub origin: Option<Text>,
    /// `m:`
    pub maintainer: Option<Text>,
    /// `t:`
    pub build_time: Option<u64>,
    /// `c:` (may be empty)
    pub commit: Option<Text>,
    /// `k:`
    pub provider_priority: Option<u32>,
    /// `D:`
    pub depends: Vec<Dependency>,
    /// `p:`
    pub provides: Vec<Dependency>,
    /// `i:`
    pub install_if: Vec<Dependency>,
    /// `r:` (installed DB and `.PKGINFO` only)
    pub replaces: Vec<Dependency>,
    /// `q:`
    pub replaces_priority: Option<u32>,
    /// `triggers =` globs from `.PKGINFO` (kept in `lib/apk/db/triggers`).
    pub triggers: Vec<String>,
    /// `datahash =` (SHA-256 hex of the data member).
    pub datahash: Option<Box<str>>,
    /// Set when a dependency line could not be parsed: the package is uninstallable.
    pub broken: bool,
}

/// A `.PKGINFO` or index entry problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaError(pub String);

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, MetaError> {
    v.trim()
        .parse()
        .map_err(|_| MetaError(format!("{key}: '{v}' is not a number")))
}

impl Package {
    /// `name-version`, as apk prints packages.
    pub fn name_version(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// Parse the text of `.PKGINFO`.
    pub fn from_pkginfo(text: &str) -> Result<Self, MetaError> {
        let mut p = Package::default();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once(" = ") else {
                return Err(MetaError(format!("line {}: expected 'key = value'", i + 1)));
            };
            let deps = |v: &str| -> Vec<Dependency> {
                v.split_whitespace()
                    .filter_map(|t| Dependency::parse(t, false).ok())
                    .collect()
            };
            let deps_ok = |v: &str| {
                v.split_whitespace()
                    .all(|t| Dependency::parse(t, false).is_ok())
            };
            match k {
                "pkgname" => p.name = v.into(),
                "pkgver" => p.version = v.into(),
                "pkgdesc" => p.description = v.into(),
                "url" => p.url = v.into(),
                "builddate" => p.build_time = Some(parse_num(k, v)?),
                "size" => p.installed_size = parse_num(k, v)?,
                "arch" => p.arch = Some(v.into()),
                "origin" => p.origin = Some(v.into()),
                "commit" => p.commit = Some(v.into()),
                "maintainer" => p.maintainer = Some(v.into()),
                "license" => p.license = v.into(),
                "provider_priority" => p.provider_priority = Some(parse_num(k, v)?),
                "replaces_priority" => p.replaces_priority = Some(parse_num(k, v)?),
                "depend" | "provides" | "install_if" | "replaces" => {
                    if !deps_ok(v) {
                        return Err(MetaError(format!(
                            "line {}: invalid dependency in '{v}'",
                            i + 1
                        )));
                    }
                    let list = match k {
                        "depend" => &mut p.depends,
                        "provides" => &mut p.provides,
                        "install_if" => &mut p.install_if,
                        _ => &mut p.replaces,
                    };
                    list.extend(deps(v));
                }
                "triggers" => p.triggers.extend(v.split_whitespace().map(str::to_string)),
                "datahash" => p.datahash = Some(v.trim().into()),
                _ => {}
            }
        }
        if !dep::is_valid_package_name(&p.name) {
            return Err(MetaError(format!(
                "invalid or missing pkgname '{}'",
                p.name
            )));
        }
        if !crate::version::is_loadable(&p.version) {
            return Err(MetaError(format!(
                "invalid or missing pkgver '{}'",
                p.version
            )));
        }
        Ok(p)
    }

    /// Apply one `X:value` index letter. Returns `Ok(false)` for letters this struct does not hold
    /// (installed-only letters handled by the database reader, or unknown ones).
    pub fn apply_letter(&mut self, letter: u8, v: &str) -> Result<bool, MetaError> {
        self.apply_letter_in(letter, &Text::new(v))
    }

    /// [`Package::apply_letter`] for a value that is a [`Text`] (a slice of an index): the
    /// package's strings share its buffer.
    pub fn apply_letter_in(&mut self, letter: u8, value: &Text) -> Result<bool, MetaError> {
        let v = value.as_str();
        // An invalid dependency makes the package uninstallable instead of failing the whole
        // index; provides are read up to the first that does not parse, as apk-tools reads them
        // (one whose version only is not a version is kept as written); an invalid install_if
        // condition drops the whole rule, so a partial one never installs the package
        // (apk-format.md §3).
        let deps = |p: &mut Package, v: &str| -> Vec<Dependency> {
            Dependency::parse_list_in(value, v, false).unwrap_or_else(|_| {
                p.broken = true;
                v.split_whitespace()
                    .filter_map(|t| Dependency::parse_in(value, t, false).ok())
                    .collect()
            })
        };
        let provides = |v: &str| -> Vec<Dependency> {
            v.split_whitespace()
                .map_while(|t| Dependency::parse_provide_in(value, t).ok())
                .collect()
        };
        let install_if = |v: &str| Dependency::parse_list_in(value, v, false).unwrap_or_default();
        match letter {
            b'C' => {
                self.identity = Checksum::parse(v)
                    .ok_or_else(|| MetaError(format!("invalid checksum '{v}'")))?
            }
            b'P' => self.name = value.clone(),
            b'V' => self.version = value.clone(),
            b'A' => self.arch = Some(value.clone()),
            b'S' => self.size = parse_num("S", v)?,
            b'I' => self.installed_size = parse_num("I", v)?,
            b'T' => self.description = value.clone(),
            b'U' => self.url = value.clone(),
            b'L' => self.license = value.clone(),
            b'o' => self.origin = Some(value.clone()),
            b'm' => self.maintainer = Some(value.clone()),
            b't' => self.build_time = Some(parse_num("t", v)?),
            b'c' => self.commit = Some(value.clone()),
            b'k' => self.provider_priority = Some(parse_num("k", v)?),
            b'D' => self.depends = deps(self, v),
            b'p' => self.provides = provides(v),
            b'i' => self.install_if = install_if(v),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Write the index letters in apk's order (`C P V A S I T U L`, `o m t c k`, `D p i`).
    pub fn write_index_header(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "C:{}", self.identity);
        let _ = writeln!(out, "P:{}", self.name);
        let _ = writeln!(out, "V:{}", self.version);
        if let Some(a) = &self.arch {
            let _ = writeln!(out, "A:{a}");
        }
        let _ = writeln!(out, "S:{}", self.size);
        let _ = writeln!(out, "I:{}", self.installed_size);
        let _ = writeln!(out, "T:{}", self.description);
        let _ = writeln!(out, "U:{}", self.url);
        let _ = writeln!(out, "L:{}", self.license);
        if let Some(o) = &self.origin {
            let _ = writeln!(out, "o:{o}");
        }
        if let Some(m) = &self.maintainer {
            let _ = writeln!(out, "m:{m}");
        }
        if let Some(t) = self.build_time {
            let _ = writeln!(out, "t:{t}");
        }
        if let Some(c) = &self.commit {
            let _ = writeln!(out, "c:{c}");
        }
        if let Some(k) = self.provider_priority {
            let _ = writeln!(out, "k:{k}");
        }
        for (l, list) in [
            ('D', &self.depends),
            ('p', &self.provides),
            ('i', &self.install_if),
        ] {
            if !list.is_empty() {
                let _ = writeln!(out, "{l}:{}", dep::list_to_string(list));
            }
        }
    }

    /// Whether the package may be installed on a system whose arch list is `arches`.
    pub fn arch_ok(&self, arches: &[String]) -> bool {
        match self.arch.as_deref() {
            None | Some("noarch") => true,
            Some(a) => arches.iter().any(|x| x == a),
        }
    }
}

/// Sort key used by indexes and the installed database: name (`strcasecmp`, ties by `strcmp`), then
/// version ascending.
pub fn index_order(a: &Package, b: &Package) -> std::cmp::Ordering {
    name_order(&a.name, &b.name).then_with(|| crate::version::compare(&a.version, &b.version))
}

/// `strcasecmp`, ties broken by `strcmp`.
pub fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    let la = a.bytes().map(|c| c.to_ascii_lowercase());
    let lb = b.bytes().map(|c| c.to_ascii_lowercase());
    la.cmp(lb).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKGINFO: &str = "# Generated by abuild 3.12.0-r0\n# using fakeroot version 1.32.1\n\
pkgname = busybox-binsh\npkgver = 1.36.1-r15\npkgdesc = busybox ash /bin/sh\nurl = https://busybox.net/\n\
builddate = 1699383189\npackager = Buildozer <x>\nsize = 8192\narch = x86_64\norigin = busybox\n\
commit = d1b6f274\nmaintainer = Someone <s@x>\nreplaces_priority = 5\nprovider_priority = 100\n\
license = GPL-2.0-only\nreplaces = busybox-initscripts\ndepend = busybox=1.36.1-r15\nprovides = /bin/sh\n\
triggers = /bin /usr/bin\ninstall_if = busybox=1.36.1-r15 libssl3\nprovides = cmd:sh=1.36.1-r15\n\
depend = so:libc.musl-x86_64.so.1\ndatahash = fda0ec87\n";

    #[test]
    fn pkginfo() {
        let p = Package::from_pkginfo(PKGINFO).unwrap();
        assert_eq!(p.name, "busybox-binsh");
        assert_eq!(p.version, "1.36.1-r15");
        assert_eq!(p.installed_size, 8192);
        assert_eq!(p.depends.len(), 2);
        assert_eq!(p.provides.len(), 2);
        assert_eq!(p.install_if.len(), 2);
        assert_eq!(p.replaces[0].name, "busybox-initscripts");
        assert_eq!(p.replaces_priority, Some(5));
        assert_eq!(p.provider_priority, Some(100));
        assert_eq!(p.triggers, vec!["/bin", "/usr/bin"]);
        assert_eq!(p.datahash.as_deref(), Some("fda0ec87"));
        assert_eq!(p.commit.as_deref(), Some("d1b6f274"));
    }

    #[test]
    fn pkginfo_errors() {
        assert!(Package::from_pkginfo("pkgname = x\n").is_err());
        assert!(Package::from_pkginfo("pkgname = x\npkgver = 1.0\nsize = many\n").is_err());
        assert!(Package::from_pkginfo("pkgname = x\npkgver = 1\ndepend = a==\n").is_err());
        assert!(Package::from_pkginfo("garbage line\n").is_err());
        assert!(Package::from_pkginfo("pkgname = x\npkgver = 1\n").is_ok());
    }

    #[test]
    fn checksums() {
        let c = Checksum::parse("Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=").unwrap();
        assert_eq!(
            hex::encode(&c.0),
            "8de44017e12968741298a671b40f5f9ae0fa1eff"
        );
        assert_eq!(c.to_string(), "Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=");
        let x = Checksum::parse("X18de44017e12968741298a671b40f5f9ae0fa1eff").unwrap();
        assert_eq!(x, c);
        // Non-zero bits after the digest in the last character: ignored, as apk-tools does.
        let t = Checksum::parse("Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv9=").unwrap();
        assert_eq!(t, c);
        assert_eq!(t.to_string(), "Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=");
        assert!(Checksum::parse("Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8").is_none());
        assert!(Checksum::parse("Q1short").is_none());
        assert!(Checksum::parse("").is_none());
        assert_eq!(c.short_hex(), "8de44017");
    }

    #[test]
    fn header_roundtrip() {
        let mut p = Package::from_pkginfo(PKGINFO).unwrap();
        p.identity = Checksum(vec![7; 20]);
        let mut s = String::new();
        p.write_index_header(&mut s);
        let mut q = Package::default();
        for line in s.lines() {
            q.apply_letter(line.as_bytes()[0], &line[2..]).unwrap();
        }
        assert_eq!(q.depends, p.depends);
        assert_eq!(q.provides, p.provides);
        assert_eq!(q.name, p.name);
        assert!(s.starts_with(
            "C:Q1BwcHBwcHBwcHBwcHBwcHBwcHBwc=\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\n"
        ));
    }

    #[test]
    fn ordering() {
        assert_eq!(name_order("B", "a"), std::cmp::Ordering::Greater);
        assert_eq!(name_order("a", "A"), std::cmp::Ordering::Greater);
    }
}
