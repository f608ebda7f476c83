//! Netboot trees (`mkimage --format netboot -o DIR`): what a user copies to a web server so that
//! a fleet boots from the network, each machine with its own signed overlay.
//!
//! ```text
//! DIR/boot.ipxe                           the iPXE script: kernel, initrd, command line
//! DIR/boot/vmlinuz, DIR/boot/initramfs    the kernel and the initramfs (network drivers, keys)
//! DIR/boot/modloop-<flavor>[.sig]         the signed modloop, when asked
//! DIR/apks/<arch>/APKINDEX.tar.gz, *.apk  the signed repository of the world's closure
//! DIR/<mac>.apkovl.tar.gz[.sig]           one overlay per machine, signed for its MAC
//! DIR/.alpine-release                     the release id
//! ```
//!
//! `boot.ipxe` boots the kernel with `ip=dhcp`, `BOOTIF=01-${netX/mac:hexhyp}` (the card iPXE
//! booted from), `alpine_repo=${base}/apks`, `apkovl=${base}/{MAC}.apkovl.tar.gz` (the init puts
//! the configured card's address in place of `{MAC}`), `modloop=${base}/boot/modloop-<flavor>`
//! (or `modloop=none`) and the `--cmdline` words. `${base}` is the URL the tree is served from:
//! the script sets it to `--netboot-url URL`, or to `http://${next-server}` (the web server's
//! root on the DHCP/TFTP server) without one, unless it is already set when the script runs (a
//! DHCP option or an embedded script may set it). The kernel and initramfs come over HTTP from
//! `${base}` whether the script itself came over TFTP or HTTP.
//!
//! Overlays: `--apkovl FILE` may be repeated. A file named `<mac>.apkovl.tar.gz` (lower case,
//! colons) is published as it is, with its `.sig` beside it (or signed for its MAC with
//! `--ovl-key` when given). `--hosts FILE` maps MACs to host names, one `aa:bb:cc:dd:ee:ff
//! hostname` per line (`-` separators and upper case accepted; `#` starts a comment; blank lines
//! ignored): each line publishes the overlay `--apkovl <hostname>.apkovl.tar.gz` as
//! `<mac>.apkovl.tar.gz`, signed with `--ovl-key` by a statement naming the MAC as the host (the
//! init's `apkovl=URL` check refuses an overlay whose statement names another host, so a file
//! copied to another MAC's name does not boot). Without MAC overlays, a single `--apkovl` is
//! published under its own name and every machine boots it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use bootspec::medium::SIGNATURE_SUFFIX;

use crate::error::{Error, IoResultExt};
use crate::layout::{Layout, Source};
use crate::options::Options;

/// The iPXE script at the top of the tree.
pub const IPXE_SCRIPT: &str = "boot.ipxe";

/// The suffix of every overlay a netboot tree publishes (what `boot.ipxe` asks for).
const OVERLAY_SUFFIX: &str = ".apkovl.tar.gz";

/// The largest `--hosts` file read.
const MAX_HOSTS_FILE: u64 = 1 << 20;

/// The `base` URL when no `--netboot-url` is given: the web server on the DHCP/TFTP server.
pub const DEFAULT_BASE: &str = "http://${next-server}";

/// One machine of `--hosts`: its MAC (lower case, colons) and the host whose overlay it boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The host name (its overlay is `--apkovl <name>.apkovl.tar.gz`).
    pub name: String,
    /// The line of the hosts file (1-based), for messages.
    pub line: usize,
}

/// A parsed `--hosts` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    /// The file, for messages.
    pub path: PathBuf,
    /// The machines, in file order.
    pub entries: Vec<Host>,
}

impl Hosts {
    /// Reads and checks `path` (at most 1 MiB).
    pub fn load(path: &Path) -> Result<Hosts, Error> {
        let bad = |reason: String| Error::Input {
            option: "--hosts",
            path: path.to_path_buf(),
            reason,
        };
        let file = fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut text = String::new();
        file.take(MAX_HOSTS_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| bad(e.to_string()))?;
        if text.len() as u64 > MAX_HOSTS_FILE {
            return Err(bad(format!("larger than {MAX_HOSTS_FILE} bytes")));
        }
        Hosts::parse(&text, path)
    }

    /// Parses the text of a hosts file: `MAC HOSTNAME` per line, `#` comments.
    pub fn parse(text: &str, path: &Path) -> Result<Hosts, Error> {
        let mut entries: Vec<Host> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let bad = |reason: String| Error::Input {
                option: "--hosts",
                path: path.to_path_buf(),
                reason: format!("line {line}: {reason}"),
            };
            let words: Vec<&str> = raw
                .split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let (mac_text, name) = match words[..] {
                [] => continue,
                [mac, name] => (mac, name),
                _ => {
                    return Err(bad(format!(
                        "\"{}\": expected \"aa:bb:cc:dd:ee:ff hostname\"",
                        raw.trim()
                    )))
                }
            };
            let mac = normalize_mac(mac_text).ok_or_else(|| {
                bad(format!(
                    "\"{mac_text}\" is not a MAC address (aa:bb:cc:dd:ee:ff)"
                ))
            })?;
            check_hostname(name).map_err(|r| bad(format!("host name \"{name}\": {r}")))?;
            if let Some(first) = entries.iter().find(|h| h.mac == mac) {
                return Err(bad(format!(
                    "{mac} is listed twice (first on line {})",
                    first.line
                )));
            }
            entries.push(Host {
                mac,
                name: name.to_string(),
                line,
            });
        }
        Ok(Hosts {
            path: path.to_path_buf(),
            entries,
        })
    }
}

/// A host name as `/etc/hostname` holds it: dot-separated labels of letters, digits and `-`
/// (not at either end), each at most 63 characters, at most 253 in all (RFC 1123).
pub fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated part must be 1 to 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("use letters, digits, '-' and '.' only".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a part may not begin or end with '-'".into());
        }
    }
    Ok(())
}

/// `AA-BB-cc:dd:EE:ff` -> `aa:bb:cc:dd:ee:ff` (the `{MAC}` form of netboot names).
pub fn normalize_mac(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

/// A file name written into `boot.ipxe` (in a URL on the kernel's command line) and into the boot
/// loaders' command lines: letters, digits and `._-+:@,~=` only. Whitespace would split the word,
/// `$` is expanded by iPXE, `#` starts a comment (and a URL fragment), a newline a new command.
pub(crate) fn check_path_word(word: &str) -> Result<(), String> {
    if let Some(c) = word
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-+:@,~=".contains(*c)))
    {
        return Err(format!(
            "\"{}\" holds {c:?}: use letters, digits and ._-+:@,~= only",
            word.escape_debug()
        ));
    }
    Ok(())
}

/// `--netboot-url`: an `http://` or `https://` URL without spaces, quotes or `#`; the trailing
/// `/` is dropped.
pub fn check_base_url(url: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::setting("--netboot-url", format!("\"{url}\": {reason}"));
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(bad("names no server"));
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '#' | '\\'))
    {
        return Err(bad(
            "no spaces, quotes, '#' or '\\' (it goes on the kernel command line)",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Lays out the overlays of a netboot tree (see the module's notes); returns the `apkovl=` value
/// relative to the tree (`{MAC}.apkovl.tar.gz`, a shared overlay's name, or none). Each overlay
/// holding private keys or password hashes adds a warning to `warnings`: the tree is served to
/// whoever asks.
pub(crate) fn add_overlays(
    layout: &mut Layout,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, Error> {
    let input = |path: &Path, reason: String| Error::Input {
        option: "--apkovl",
        path: path.to_path_buf(),
        reason,
    };
    // Every --apkovl by the host its name is for.
    let mut by_host: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for path in &opts.apkovl {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| input(path, "needs a UTF-8 file name".into()))?;
        let host = name
            .strip_suffix(OVERLAY_SUFFIX)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                input(
                    path,
                    "a netboot overlay is named HOST.apkovl.tar.gz or MAC.apkovl.tar.gz (boot.ipxe asks for {MAC}.apkovl.tar.gz)".into(),
                )
            })?;
        if let Some(first) = by_host.insert(host.to_string(), path) {
            return Err(input(
                path,
                format!(
                    "a second overlay for {host} (the first: {})",
                    first.display()
                ),
            ));
        }
    }
    let sign = |bytes: &[u8], mac: &str| -> Result<Option<Vec<u8>>, Error> {
        let Some(key) = &opts.ovl_key else {
            return Ok(None);
        };
        overlays::sign_statement(bytes, mac, opts.build_time, 1, &key.key, &key.name)
            .map(|s| Some(s.into_bytes()))
            .map_err(|e| Error::Input {
                option: "--ovl-key",
                path: key.path.clone(),
                reason: e.to_string(),
            })
    };
    let publish = |layout: &mut Layout,
                   warnings: &mut Vec<String>,
                   mac: &str,
                   src: &Path|
     -> Result<(), Error> {
        let bytes = read_overlay(src)?;
        warnings.extend(exposure_warning(
            src,
            &bytes,
            &format!("{mac}{OVERLAY_SUFFIX}"),
        ));
        let name = format!("{mac}{OVERLAY_SUFFIX}");
        let sig_name = format!("{name}{SIGNATURE_SUFFIX}");
        let sig = match sign(&bytes, mac)? {
            Some(s) => Some(s),
            None => {
                let beside = src.with_file_name(format!(
                    "{}{SIGNATURE_SUFFIX}",
                    src.file_name().and_then(|n| n.to_str()).unwrap_or_default()
                ));
                beside
                    .exists()
                    .then(|| fs::read(&beside).at(&beside))
                    .transpose()?
            }
        };
        let len = bytes.len() as u64;
        layout.add_file(&name, Source::Bytes(bytes), len)?;
        if let Some(sig) = sig {
            let len = sig.len() as u64;
            layout.add_file(&sig_name, Source::Bytes(sig), len)?;
        }
        Ok(())
    };

    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut per_mac = 0usize;
    if let Some(hosts) = &opts.hosts {
        if opts.ovl_key.is_none() {
            return Err(Error::Input {
                option: "--hosts",
                path: hosts.path.clone(),
                reason: "needs --ovl-key: each host's overlay is signed for its MAC (the init checks the host in the signed statement)".into(),
            });
        }
        for h in &hosts.entries {
            let Some(src) = by_host.get(&h.name) else {
                return Err(Error::Input {
                    option: "--hosts",
                    path: hosts.path.clone(),
                    reason: format!(
                        "line {}: {} {}: no --apkovl {}{OVERLAY_SUFFIX} given",
                        h.line, h.mac, h.name, h.name
                    ),
                });
            };
            if by_host.contains_key(&h.mac) {
                return Err(Error::Input {
                    option: "--hosts",
                    path: hosts.path.clone(),
                    reason: format!(
                        "line {}: {} has its own --apkovl {}{OVERLAY_SUFFIX} too: which one boots?",
                        h.line, h.mac, h.mac
                    ),
                });
            }
            publish(layout, warnings, &h.mac, src)?;
            used.insert(h.name.as_str());
            per_mac += 1;
        }
    }
    let mut shared = Vec::new();
    for (host, src) in &by_host {
        if used.contains(host.as_str()) {
            continue;
        }
        match normalize_mac(host) {
            Some(mac) if &mac == host => {
                publish(layout, warnings, &mac, src)?;
                per_mac += 1;
            }
            Some(mac) => {
                return Err(input(
                    src,
                    format!("name it {mac}{OVERLAY_SUFFIX} (lower case, colons): the init asks for {{MAC}} in that form"),
                ))
            }
            None if opts.hosts.is_some() => {
                return Err(input(
                    src,
                    format!(
                        "no line of --hosts {} names the host {host}",
                        opts.hosts.as_ref().map(|h| h.path.display().to_string()).unwrap_or_default()
                    ),
                ))
            }
            None => shared.push(*src),
        }
    }
    match (per_mac, &shared[..]) {
        (0, []) => Ok(None),
        (_, []) => Ok(Some(format!("{{MAC}}{OVERLAY_SUFFIX}"))),
        (0, [one]) => {
            let name = crate::file_name(one, "--apkovl")?;
            check_path_word(name).map_err(|r| input(one, format!("its name goes into boot.ipxe: {r}")))?;
            warnings.extend(exposure_warning(one, &read_overlay(one)?, name));
            crate::add_apkovl(layout, one)?;
            Ok(Some(crate::file_name(one, "--apkovl")?.to_string()))
        }
        (0, [_, second, ..]) => Err(input(
            second,
            "several overlays for no MAC: give --hosts FILE to say which machine boots which"
                .into(),
        )),
        (_, [first, ..]) => Err(input(
            first,
            "is for no MAC while the tree has per-MAC overlays (boot.ipxe asks for {MAC}.apkovl.tar.gz): add its host to --hosts".into(),
        )),
    }
}

/// The warning for an overlay published as `name` in the tree when it holds what only its
/// machine should read: private keys (SSH host keys, WireGuard, TLS) and password hashes in
/// `etc/shadow`. The tree is readable by whoever reaches the server (MACs are guessable), so the
/// warning names the files; `None` when it holds none.
fn exposure_warning(src: &Path, bytes: &[u8], name: &str) -> Option<String> {
    let subject = format!("--apkovl {}", src.display());
    let found = match secrets_in_overlay(bytes) {
        Ok(found) => found,
        Err(reason) => {
            return Some(format!(
                "{subject}: cannot be read as an overlay to check it for private keys ({reason})"
            ))
        }
    };
    (!found.is_empty()).then(|| {
        format!(
            "{subject}: published as {name}, readable by whoever can reach the server, holds {}: restrict access to the tree on the server (client addresses or TLS client certificates)",
            found.join(", ")
        )
    })
}

/// The members of an overlay that hold secrets: `etc/shadow` with a password hash, any file
/// holding a private key (see [`mkinitfs::secret`]), in member order.
fn secrets_in_overlay(bytes: &[u8]) -> Result<Vec<String>, String> {
    let (members, _) = overlays::read_members(bytes).map_err(|e| e.to_string())?;
    let names: Vec<&str> = members
        .iter()
        .filter(|m| matches!(m.kind, overlays::MemberKind::File))
        .map(|m| m.name.as_str())
        .collect();
    let contents = overlays::read_contents(bytes, &names).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for name in names {
        let Some(data) = contents.get(name) else {
            continue;
        };
        if name == "etc/shadow" && has_password_hash(data) {
            found.push("etc/shadow (password hashes)".to_string());
        } else if let Some(secret) = mkinitfs::secret::find(data) {
            found.push(format!("{name} ({secret})"));
        } else if has_wireguard_key(data) {
            found.push(format!("{name} (a WireGuard private key)"));
        }
    }
    Ok(found)
}

/// Whether a file holds a WireGuard `PrivateKey = ...` line (wg-quick's configuration).
fn has_wireguard_key(data: &[u8]) -> bool {
    String::from_utf8_lossy(data).lines().any(|line| {
        line.trim()
            .strip_prefix("PrivateKey")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    })
}

/// Whether a shadow file holds a password hash: a second field that is not empty, `*`, `!` or
/// `x` once a lock's leading `!` is dropped (a locked hash is still a hash).
fn has_password_hash(shadow: &[u8]) -> bool {
    String::from_utf8_lossy(shadow).lines().any(|line| {
        let hash = line.split(':').nth(1).unwrap_or("").trim_start_matches('!');
        !matches!(hash, "" | "*" | "x")
    })
}

/// An overlay's bytes (at most what the init reads).
fn read_overlay(path: &Path) -> Result<Vec<u8>, Error> {
    let bad = |reason: String| Error::Input {
        option: "--apkovl",
        path: path.to_path_buf(),
        reason,
    };
    let file = fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    if !file.metadata().map_err(|e| bad(e.to_string()))?.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(overlays::MAX_OVERLAY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > overlays::MAX_OVERLAY_BYTES {
        return Err(bad(format!(
            "larger than the {} MiB the init reads",
            overlays::MAX_OVERLAY_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// What goes into `boot.ipxe`.
pub struct Script<'a> {
    /// The release id (a comment).
    pub release: &'a str,
    /// `--netboot-url` (checked), or `None` for [`DEFAULT_BASE`].
    pub base: Option<&'a str>,
    /// The modloop's path in the tree.
    pub modloop: Option<&'a str>,
    /// The `apkovl=` value relative to the tree.
    pub apkovl: Option<&'a str>,
    /// Whether the tree has a repository at `apks/`.
    pub repository: bool,
    /// The `--cmdline` words.
    pub cmdline: &'a str,
}

/// The iPXE script.
pub fn ipxe_script(s: &Script) -> String {
    let mut ours = vec![
        "initrd=initramfs".to_string(),
        "ip=dhcp".to_string(),
        "BOOTIF=01-${netX/mac:hexhyp}".to_string(),
    ];
    if s.repository {
        ours.push(format!(
            "alpine_repo=${{base}}/{}",
            bootspec::medium::APKS_DIR
        ));
    }
    ours.push(match s.modloop {
        Some(m) => format!("modloop=${{base}}/{m}"),
        None => "modloop=none".to_string(),
    });
    if let Some(o) = s.apkovl {
        ours.push(format!("apkovl=${{base}}/{o}"));
    }
    // A parameter the --cmdline words set themselves is theirs (e.g. a static ip=).
    let key = |w: &str| w.split('=').next().unwrap_or(w).to_string();
    let given: BTreeSet<String> = s.cmdline.split_whitespace().map(key).collect();
    let mut words: Vec<String> = ours
        .into_iter()
        .filter(|w| !given.contains(&key(w)))
        .collect();
    words.extend(s.cmdline.split_whitespace().map(str::to_string));
    format!(
        "#!ipxe\n\
         # {release}: written by mkimage --format netboot.\n\
         # ${{base}} is the URL this tree is served from, unless set before this script runs.\n\
         isset ${{base}} || set base {base}\n\
         echo Booting {release} from ${{base}}\n\
         kernel ${{base}}/{kernel} {cmdline}\n\
         initrd --name initramfs ${{base}}/{initramfs}\n\
         boot\n",
        release = s.release,
        base = s.base.unwrap_or(DEFAULT_BASE),
        kernel = bootspec::medium::KERNEL,
        initramfs = bootspec::medium::INITRAMFS,
        cmdline = words.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts_err(text: &str) -> String {
        Hosts::parse(text, Path::new("/srv/hosts"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn hosts_files_are_read_and_checked_by_line() {
        let h = Hosts::parse(
            "# the fleet\n52:54:00:AB:cd:01 fw1\n\n52-54-00-ab-cd-02\tfw2.example.org # branch\n",
            Path::new("/srv/hosts"),
        )
        .unwrap();
        assert_eq!(
            h.entries,
            [
                Host {
                    mac: "52:54:00:ab:cd:01".into(),
                    name: "fw1".into(),
                    line: 2
                },
                Host {
                    mac: "52:54:00:ab:cd:02".into(),
                    name: "fw2.example.org".into(),
                    line: 4
                }
            ]
        );
        assert_eq!(
            hosts_err("52:54:00:ab:cd fw1\n"),
            "--hosts /srv/hosts: line 1: \"52:54:00:ab:cd\" is not a MAC address (aa:bb:cc:dd:ee:ff)"
        );
        assert_eq!(
            hosts_err("52:54:00:ab:cd:01 fw1\n52:54:00:AB:CD:01 fw2\n"),
            "--hosts /srv/hosts: line 2: 52:54:00:ab:cd:01 is listed twice (first on line 1)"
        );
        assert_eq!(
            hosts_err("\n52:54:00:ab:cd:01 fw_1\n"),
            "--hosts /srv/hosts: line 2: host name \"fw_1\": use letters, digits, '-' and '.' only"
        );
        assert_eq!(
            hosts_err("52:54:00:ab:cd:01\n"),
            "--hosts /srv/hosts: line 1: \"52:54:00:ab:cd:01\": expected \"aa:bb:cc:dd:ee:ff hostname\""
        );
    }

    #[test]
    fn words_of_the_script_are_checked() {
        assert!(check_path_word("fw1.apkovl.tar.gz").is_ok());
        assert!(check_path_word("modloop-lts").is_ok());
        assert_eq!(
            check_path_word("a #.apkovl.tar.gz").unwrap_err(),
            "\"a #.apkovl.tar.gz\" holds ' ': use letters, digits and ._-+:@,~= only"
        );
        for bad in ["a${x}", "#a", "a\nboot", "a\tb", "a\"b", "a/b"] {
            assert!(check_path_word(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            check_base_url("http://10.0.0.1:8080/fleet/").unwrap(),
            "http://10.0.0.1:8080/fleet"
        );
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("http://").is_err());
        assert!(check_base_url("http://x/a b").is_err());
    }

    #[test]
    fn the_script_boots_the_tree_from_its_base() {
        let s = ipxe_script(&Script {
            release: "alpine-diskless-3.19.1-260101",
            base: Some("http://10.0.0.1/fleet"),
            modloop: Some("boot/modloop-lts"),
            apkovl: Some("{MAC}.apkovl.tar.gz"),
            repository: true,
            cmdline: "quiet  console=ttyS0",
        });
        assert!(s.starts_with("#!ipxe\n"), "{s}");
        assert!(
            s.contains("isset ${base} || set base http://10.0.0.1/fleet\n"),
            "{s}"
        );
        assert!(s.contains(
            "kernel ${base}/boot/vmlinuz initrd=initramfs ip=dhcp BOOTIF=01-${netX/mac:hexhyp} \
             alpine_repo=${base}/apks modloop=${base}/boot/modloop-lts \
             apkovl=${base}/{MAC}.apkovl.tar.gz quiet console=ttyS0\n"
        ), "{s}");
        assert!(
            s.contains("initrd --name initramfs ${base}/boot/initramfs\nboot\n"),
            "{s}"
        );
        let s = ipxe_script(&Script {
            release: "r",
            base: None,
            modloop: None,
            apkovl: None,
            repository: false,
            cmdline: "",
        });
        assert!(s.contains("set base http://${next-server}\n"), "{s}");
        assert!(
            s.contains("BOOTIF=01-${netX/mac:hexhyp} modloop=none\n"),
            "{s}"
        );
        let s = ipxe_script(&Script {
            release: "r",
            base: None,
            modloop: Some("boot/modloop-lts"),
            apkovl: None,
            repository: true,
            cmdline: "ip=10.0.0.9::10.0.0.1:255.255.255.0 modloop=none",
        });
        assert!(s.contains("BOOTIF=01-${netX/mac:hexhyp} alpine_repo=${base}/apks ip=10.0.0.9::10.0.0.1:255.255.255.0 modloop=none\n"), "{s}");
    }

    #[test]
    fn overlays_holding_keys_or_password_hashes_are_named() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("etc/ssh")).unwrap();
        fs::create_dir_all(root.join("etc/wireguard")).unwrap();
        fs::write(root.join("etc/hostname"), "fw1\n").unwrap();
        fs::write(
            root.join("etc/shadow"),
            "root:*::0:::::\nadmin:!$6$salt$hash:19000:0:99999:7:::\n",
        )
        .unwrap();
        fs::write(
            root.join("etc/ssh/ssh_host_ed25519_key"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        fs::write(
            root.join("etc/wireguard/wg0.conf"),
            "[Interface]\nPrivateKey = x\n",
        )
        .unwrap();
        let ovl = t.path().join("fw1.apkovl.tar.gz");
        let pack = |ovl: &Path| {
            let st = std::process::Command::new("tar")
                .arg("czf")
                .arg(ovl)
                .arg("-C")
                .arg(&root)
                .arg("etc")
                .status()
                .unwrap();
            assert!(st.success());
            fs::read(ovl).unwrap()
        };
        let bytes = pack(&ovl);
        let w = exposure_warning(&ovl, &bytes, "52:54:00:00:00:01.apkovl.tar.gz").unwrap();
        assert!(
            w.starts_with(&format!(
                "--apkovl {}: published as 52:54:00:00:00:01.apkovl.tar.gz, readable by whoever can reach the server, holds ",
                ovl.display()
            )),
            "{w}"
        );
        assert!(w.contains("etc/shadow (password hashes)"), "{w}");
        assert!(
            w.contains("etc/ssh/ssh_host_ed25519_key (a PEM private key (OPENSSH PRIVATE KEY))"),
            "{w}"
        );
        assert!(
            w.contains("etc/wireguard/wg0.conf (a WireGuard private key)"),
            "{w}"
        );
        assert!(!w.contains("hostname"), "{w}");
        // Without a hash or a key: nothing to say.
        fs::write(root.join("etc/shadow"), "root:*::0:::::\nbin:!::0:::::\n").unwrap();
        fs::remove_dir_all(root.join("etc/ssh")).unwrap();
        fs::remove_dir_all(root.join("etc/wireguard")).unwrap();
        let bytes = pack(&ovl);
        assert_eq!(exposure_warning(&ovl, &bytes, "x"), None);
        // Not an overlay: said, not ignored.
        let w = exposure_warning(&ovl, b"junk", "x").unwrap();
        assert!(w.contains("cannot be read as an overlay"), "{w}");
    }
}
