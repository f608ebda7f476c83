//! The boot policy an initramfs carries (`etc/boot-policy`).
//!
//! `mkinitfs` records here what the person who built the image decided; the init reads it before
//! the kernel command line, and the command line may only tighten it (whoever can edit the
//! command line on an unsigned medium must not be able to switch a check off). The file is plain
//! `key=value` text so that a human can read it in a rescue shell:
//!
//! ```text
//! # Boot policy of this initramfs (written by mkinitfs).
//! apkovl_require=signed
//! apkovl_legacy_sig=no
//! sealed=no
//! ```
//!
//! `apkovl_host=HOST` (written only when set) pins the host: the overlay must be signed for
//! `HOST` (its signed statement names it), so an overlay copied from another host's medium,
//! signed by the same fleet key, is refused.
//!
//! `apkovl_not_before=SECONDS` (written only when set) is a floor for the time a signed statement
//! carries (seconds since 1970, UTC): an older overlay, validly signed, is refused. It is what keeps
//! an overlay fetched by URL from being replayed (no generation file sits beside it): the image
//! boots nothing signed before it was made.
//!
//! An absent file is the default policy ([`BootPolicy::default`]). A file that does not parse is
//! an error: the init must stop rather than guess a weaker policy.

use std::fmt;

/// What an overlay must be before the init applies it, whatever the command line says.
///
/// The two demands combine: `signed,encrypted` asks for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OverlayRequirement {
    /// A valid signature by a key in the initramfs is required.
    pub signed: bool,
    /// Authenticated encryption (age) is required: a plain overlay, or Alpine's unauthenticated
    /// `openssl enc` format, is refused.
    pub encrypted: bool,
}

impl OverlayRequirement {
    /// No demand (`any`).
    pub const ANY: Self = Self {
        signed: false,
        encrypted: false,
    };
    /// A valid signature (`signed`).
    pub const SIGNED: Self = Self {
        signed: true,
        encrypted: false,
    };
    /// Authenticated encryption (`encrypted`).
    pub const ENCRYPTED: Self = Self {
        signed: false,
        encrypted: true,
    };

    /// Parses `any`, `signed`, `encrypted` or `signed,encrypted` (in either order).
    pub fn parse(text: &str) -> Option<Self> {
        let mut req = Self::ANY;
        for word in text.split(',').map(str::trim) {
            match word {
                "any" => {}
                "signed" => req.signed = true,
                "encrypted" => req.encrypted = true,
                _ => return None,
            }
        }
        Some(req)
    }

    /// The union of two requirements (what tightening means).
    pub fn union(self, other: Self) -> Self {
        Self {
            signed: self.signed || other.signed,
            encrypted: self.encrypted || other.encrypted,
        }
    }
}

impl fmt::Display for OverlayRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.signed, self.encrypted) {
            (false, false) => "any",
            (true, false) => "signed",
            (false, true) => "encrypted",
            (true, true) => "signed,encrypted",
        })
    }
}

/// The policy recorded in an initramfs at build time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootPolicy {
    /// What every overlay must be (`apkovl_require=`).
    pub apkovl_require: OverlayRequirement,
    /// Also accept round-1 overlay signatures (`apkovl_legacy_sig=`): a detached signature over the
    /// overlay's bytes only, which binds it to no host and no generation, so an old or another
    /// host's overlay signed that way can be replayed. Off by default; a compatibility switch for
    /// media committed by older `lbu` versions until they are committed again.
    pub apkovl_legacy_sig: bool,
    /// The kernel command line and this initramfs are covered by one signature that the firmware
    /// checks (a Secure Boot unified kernel image, `mkimage --uki`). The init then trusts no
    /// boot parameter from anywhere but that command line and offers no rescue shell unless the
    /// command line asks for one.
    pub sealed: bool,
    /// The one host whose overlay this image boots (`apkovl_host=`): the overlay must be signed,
    /// with a statement for this host. `None`: any host the overlay's name and statement agree
    /// on (a medium shared by several hosts, a netboot fleet).
    pub apkovl_host: Option<String>,
    /// The oldest signing time (`time:` of the signed statement, seconds since 1970) an overlay
    /// may have (`apkovl_not_before=`): a validly signed but older overlay is refused as a replay.
    /// `None`: no floor.
    pub apkovl_not_before: Option<u64>,
}

/// Why a policy file was refused. Each names the line (1-based) it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A line that is not `key=value`, a comment or empty.
    #[error("line {line}: expected key=value")]
    Syntax {
        /// Line number.
        line: usize,
    },
    /// A key this version does not know (an image built by a newer mkinitfs).
    #[error("line {line}: unknown key '{key}'")]
    UnknownKey {
        /// Line number.
        line: usize,
        /// The key.
        key: String,
    },
    /// A value the key does not take.
    #[error("line {line}: {key}={value}: {expected}")]
    BadValue {
        /// Line number.
        line: usize,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What the key takes.
        expected: &'static str,
    },
}

impl BootPolicy {
    /// Parses the text of a policy file. Later lines win; unknown keys and bad values are errors.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let mut policy = Self::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let (key, value) = entry.split_once('=').ok_or(PolicyError::Syntax { line })?;
            let (key, value) = (key.trim(), value.trim());
            let bad = |expected| PolicyError::BadValue {
                line,
                key: key.to_string(),
                value: value.to_string(),
                expected,
            };
            match key {
                "apkovl_require" => {
                    policy.apkovl_require = OverlayRequirement::parse(value).ok_or_else(|| {
                        bad("expected any, signed, encrypted or signed,encrypted")
                    })?;
                }
                "apkovl_legacy_sig" => {
                    policy.apkovl_legacy_sig =
                        yes_no(value).ok_or_else(|| bad("expected yes or no"))?
                }
                "sealed" => {
                    policy.sealed = yes_no(value).ok_or_else(|| bad("expected yes or no"))?
                }
                "apkovl_host" => {
                    if !is_host_name(value) {
                        return Err(bad("expected a host name (letters, digits, '-', '.')"));
                    }
                    policy.apkovl_host = Some(value.to_string());
                }
                "apkovl_not_before" => {
                    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                    policy.apkovl_not_before = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|_| digits)
                            .ok_or_else(|| bad("expected seconds since 1970"))?,
                    );
                }
                _ => {
                    return Err(PolicyError::UnknownKey {
                        line,
                        key: key.to_string(),
                    })
                }
            }
        }
        Ok(policy)
    }

    /// The file's text ([`BootPolicy::parse`] reads it back unchanged).
    pub fn render(&self) -> String {
        format!(
            "# Boot policy of this initramfs (written by mkinitfs). The kernel command line\n\
             # may tighten it, never loosen it.\n\
             apkovl_require={}\n\
             apkovl_legacy_sig={}\n\
             sealed={}\n{}{}",
            self.apkovl_require,
            yes_no_word(self.apkovl_legacy_sig),
            yes_no_word(self.sealed),
            self.apkovl_host
                .as_ref()
                .map(|h| format!("apkovl_host={h}\n"))
                .unwrap_or_default(),
            self.apkovl_not_before
                .map(|t| format!("apkovl_not_before={t}\n"))
                .unwrap_or_default(),
        )
    }
}

/// A host name as `lbu` names overlays after it (`HOST.apkovl.tar.gz`): 1 to 64 letters,
/// digits, `-` and `.`, not starting with `-` or `.`.
pub fn is_host_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn yes_no(value: &str) -> Option<bool> {
    match value {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn yes_no_word(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_file_is_the_default_policy() {
        assert_eq!(BootPolicy::parse("").unwrap(), BootPolicy::default());
        assert_eq!(
            BootPolicy::default().apkovl_require,
            OverlayRequirement::ANY
        );
        assert!(!BootPolicy::default().sealed);
        assert!(!BootPolicy::default().apkovl_legacy_sig);
    }

    #[test]
    fn render_then_parse_round_trips() {
        for signed in [false, true] {
            for encrypted in [false, true] {
                for sealed in [false, true] {
                    for apkovl_legacy_sig in [false, true] {
                        for apkovl_host in [None, Some("fw-1.example".to_string())] {
                            for apkovl_not_before in [None, Some(0), Some(1_764_700_000)] {
                                let p = BootPolicy {
                                    apkovl_require: OverlayRequirement { signed, encrypted },
                                    apkovl_legacy_sig,
                                    sealed,
                                    apkovl_host: apkovl_host.clone(),
                                    apkovl_not_before,
                                };
                                assert_eq!(BootPolicy::parse(&p.render()).unwrap(), p);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn requirement_words() {
        assert_eq!(
            OverlayRequirement::parse("any"),
            Some(OverlayRequirement::ANY)
        );
        assert_eq!(
            OverlayRequirement::parse("encrypted,signed"),
            OverlayRequirement::parse("signed,encrypted")
        );
        assert_eq!(
            OverlayRequirement::parse("signed,encrypted")
                .unwrap()
                .to_string(),
            "signed,encrypted"
        );
        assert_eq!(OverlayRequirement::parse("off"), None);
        assert_eq!(
            OverlayRequirement::SIGNED.union(OverlayRequirement::ENCRYPTED),
            OverlayRequirement {
                signed: true,
                encrypted: true
            }
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            BootPolicy::parse("# c\n\nnonsense\n"),
            Err(PolicyError::Syntax { line: 3 })
        );
        assert_eq!(
            BootPolicy::parse("future=1").unwrap_err().to_string(),
            "line 1: unknown key 'future'"
        );
        assert_eq!(
            BootPolicy::parse("sealed=yes\napkovl_require=maybe")
                .unwrap_err()
                .to_string(),
            "line 2: apkovl_require=maybe: expected any, signed, encrypted or signed,encrypted"
        );
        assert_eq!(
            BootPolicy::parse("sealed=1").unwrap_err().to_string(),
            "line 1: sealed=1: expected yes or no"
        );
        for bad in ["", "-1", "+5", "1e9", "18446744073709551616", "now"] {
            assert_eq!(
                BootPolicy::parse(&format!("apkovl_not_before={bad}"))
                    .unwrap_err()
                    .to_string(),
                format!("line 1: apkovl_not_before={bad}: expected seconds since 1970"),
            );
        }
        for bad in ["", "../fw1", "-x", "fw 1", "fw1/x"] {
            assert_eq!(
                BootPolicy::parse(&format!("apkovl_host={bad}"))
                    .unwrap_err()
                    .to_string(),
                format!(
                    "line 1: apkovl_host={}: expected a host name (letters, digits, '-', '.')",
                    bad.trim()
                ),
            );
        }
    }
}
