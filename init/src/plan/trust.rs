//! The overlay trust policy and the one verdict on an overlay (docs/boot.md "Overlay trust").
//!
//! Three sources decide what an overlay must be before it is applied, and the command line may
//! only tighten what the image implies (whoever can edit the command line of an unsigned medium
//! must not be able to switch a check off):
//! 1. the image: the initramfs's boot policy (`etc/boot-policy`, [`BootPolicy`], written by
//!    `mkinitfs --ovl-require`), and overlay keys embedded in the initramfs, which imply that a
//!    signature is required;
//! 2. the command line: `apkovl_require=signed|encrypted|signed,encrypted` and
//!    `apkovl_verify=required` tighten; `apkovl_verify=optional|off` only choose how an unsigned
//!    overlay is treated when nothing requires a signature (warning or silence), and are reported
//!    and ignored where the image requires one;
//! 3. the default: without keys and without a policy, Alpine's behaviour (any overlay applies).
//!
//! The verdict ([`judge`]) takes the `overlays` crate's [`Verification`] of the file as stored
//! and what the boot knows about the file ([`OverlayFacts`]: its kind from the name, the host it
//! is for, the newest generation the medium records): a bad signature is refused whatever the
//! policy (it means tampering or a wrong key), an overlay that is not age-encrypted is refused
//! where encryption is required (Alpine's `openssl enc` files carry no authentication), a signed
//! statement for another host or an older generation is refused (`overlays::check_binding`: a
//! swapped or replayed overlay), and so is a round-1 signature unless the image accepts them,
//! an unsigned overlay where a signature is required, and an overlay for another host than the
//! one the image pins (`apkovl_host=`, which implies a signature: only a signed statement says
//! whom an overlay is for), and an overlay signed before the image's floor (`apkovl_not_before=`,
//! which implies a signature too: only a signed statement says when it was made), which is what
//! stops the replay of an older overlay fetched by URL, where no generation file sits beside it.
use std::fmt;

use bootspec::{BootPolicy, OverlayRequirement};
use overlays::{BindingError, OverlayKind, Verification};

use crate::cmdline::{BootConfig, VerifyPolicy};

/// How an unsigned overlay is treated when no signature is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsigned {
    /// Refused (a signature is required).
    Refuse,
    /// Applied with a warning (`apkovl_verify=optional`).
    Warn,
    /// Applied silently (`apkovl_verify=off`, or nothing asks for signatures: Alpine's default).
    Accept,
}

/// The effective overlay policy of this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayPolicy {
    /// What every overlay must be.
    pub require: OverlayRequirement,
    /// Why a signature is required (the first source that asked), when it is.
    pub signed_because: Option<String>,
    /// Why encryption is required, when it is.
    pub encrypted_because: Option<String>,
    /// How an unsigned overlay is treated (`Refuse` exactly when `require.signed`).
    pub unsigned: Unsigned,
    /// Round-1 signatures (over the bytes only, bound to no host) are accepted (image only).
    pub legacy_sig: bool,
    /// The initramfs holds overlay keys (`etc/apkovl/keys`): signatures can be checked.
    pub keys: bool,
    /// The image seals the command line (a signed UKI): recorded for the later phases.
    pub sealed: bool,
    /// The one host whose overlay this image boots (the image's `apkovl_host=`).
    pub host: Option<String>,
    /// Overlays signed before this time are refused (the image's `apkovl_not_before=`).
    pub not_before: Option<u64>,
    /// Command-line words that tried to loosen the image's policy, reported as warnings.
    pub ignored: Vec<String>,
}

/// The effective policy from the image (`etc/boot-policy`, embedded keys) and the command line.
pub fn overlay_policy(image: &BootPolicy, keys: bool, cfg: &BootConfig) -> OverlayPolicy {
    let mut p = OverlayPolicy {
        require: OverlayRequirement::ANY,
        signed_because: None,
        encrypted_because: None,
        unsigned: Unsigned::Accept,
        legacy_sig: image.apkovl_legacy_sig,
        keys,
        sealed: image.sealed,
        host: image.apkovl_host.clone(),
        not_before: image.apkovl_not_before,
        ignored: Vec::new(),
    };
    let demand = |p: &mut OverlayPolicy, req: OverlayRequirement, because: &str| {
        if req.signed && !p.require.signed {
            p.signed_because = Some(because.to_string());
        }
        if req.encrypted && !p.require.encrypted {
            p.encrypted_because = Some(because.to_string());
        }
        p.require = p.require.union(req);
    };
    let policy_file = format!(
        "{} apkovl_require={}",
        bootspec::initramfs::POLICY,
        image.apkovl_require
    );
    demand(&mut p, image.apkovl_require, &policy_file);
    if let Some(host) = &image.apkovl_host {
        demand(
            &mut p,
            OverlayRequirement::SIGNED,
            &format!("{} apkovl_host={host}", bootspec::initramfs::POLICY),
        );
    }
    if let Some(floor) = image.apkovl_not_before {
        demand(
            &mut p,
            OverlayRequirement::SIGNED,
            &format!("{} apkovl_not_before={floor}", bootspec::initramfs::POLICY),
        );
    }
    if keys {
        demand(
            &mut p,
            OverlayRequirement::SIGNED,
            &format!(
                "overlay keys in the initramfs ({})",
                bootspec::initramfs::APKOVL_KEYS
            ),
        );
    }
    if let Some(req) = cfg.apkovl_require {
        demand(
            &mut p,
            req,
            &format!("apkovl_require={req} on the command line"),
        );
    }
    match cfg.apkovl_verify {
        Some(VerifyPolicy::Required) => demand(
            &mut p,
            OverlayRequirement::SIGNED,
            "apkovl_verify=required on the command line",
        ),
        Some(loose @ (VerifyPolicy::Optional | VerifyPolicy::Off)) => {
            if p.require.signed {
                let because = p.signed_because.clone().unwrap_or_default();
                p.ignored.push(format!(
                    "apkovl_verify={loose} ignored: the command line cannot loosen the overlay \
                     policy (a signature is required by {because})"
                ));
            } else if loose == VerifyPolicy::Optional {
                p.unsigned = Unsigned::Warn;
            }
        }
        None => {}
    }
    if p.require.signed {
        p.unsigned = Unsigned::Refuse;
    }
    p
}

impl fmt::Display for OverlayPolicy {
    /// The effective policy, one `key=value (why)` line each, as `debug_init` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  apkovl_require={}", self.require)?;
        for (demand, because) in [
            ("signed", &self.signed_because),
            ("encrypted", &self.encrypted_because),
        ] {
            if let Some(because) = because {
                writeln!(f, "    {demand}: required by {because}")?;
            }
        }
        let unsigned = match self.unsigned {
            Unsigned::Refuse => "refused",
            Unsigned::Warn => "applied with a warning",
            Unsigned::Accept => "applied",
        };
        writeln!(f, "  unsigned overlays: {unsigned}")?;
        writeln!(f, "  overlay keys: {}", yes_no(self.keys))?;
        writeln!(f, "  apkovl_legacy_sig={}", yes_no(self.legacy_sig))?;
        if let Some(host) = &self.host {
            writeln!(f, "  apkovl_host={host}")?;
        }
        if let Some(floor) = self.not_before {
            writeln!(f, "  apkovl_not_before={floor}")?;
        }
        writeln!(f, "  sealed={}", yes_no(self.sealed))
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Why an overlay was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Signed by a trusted key.
    Verified {
        /// The key's file name.
        key: String,
    },
    /// Unsigned, applied with a warning (`apkovl_verify=optional`).
    UnsignedWarn,
    /// Unsigned, applied (nothing asks for a signature).
    Unsigned,
}

impl Acceptance {
    /// The timeline's note on the overlay's signature.
    pub fn note(&self) -> String {
        match self {
            Self::Verified { key } => format!("signature verified ({key})"),
            Self::UnsignedWarn | Self::Unsigned => "unsigned".to_string(),
        }
    }
}

/// Why an overlay was refused. Each names the rule and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature is present and does not verify.
    #[error("signature check failed: bad signature: {reason}")]
    BadSignature {
        /// The `overlays` crate's reason.
        reason: String,
    },
    /// Unsigned where a signature is required.
    #[error("signature check failed: unsigned, and a signature is required by {because}{}",
        if *.keys { "" } else { "; the initramfs holds no overlay keys to check one (mkinitfs --ovl-keys-dir)" })]
    Unsigned {
        /// The source that requires it.
        because: String,
        /// Whether the initramfs could check a signature at all.
        keys: bool,
    },
    /// The signed statement does not bind the overlay to this host and generation, or a round-1
    /// signature where the image does not accept them.
    #[error("signature check failed: {0}")]
    Binding(BindingError),
    /// The overlay is for another host than the one the image pins.
    #[error("refused: the overlay is for host {found}, and this image boots only {pinned}'s ({} apkovl_host={pinned})", bootspec::initramfs::POLICY)]
    OtherHost {
        /// The host the file is for (its name and signed statement).
        found: String,
        /// The image's `apkovl_host=`.
        pinned: String,
    },
    /// Signed before the image's floor, or by a round-1 signature that records no time where the
    /// image has a floor: a replayed older overlay.
    #[error("refused: the overlay was signed {}, before {floor}, the oldest this image boots ({} apkovl_not_before={floor}): a replayed older overlay",
        match .signed { Some(t) => format!("at {t}"), None => "with a round-1 signature, which records no time".to_string() },
        bootspec::initramfs::POLICY)]
    Stale {
        /// The statement's `time:` (`None`: a round-1 signature).
        signed: Option<u64>,
        /// The image's `apkovl_not_before=`.
        floor: u64,
    },
    /// Not age-encrypted where encryption is required.
    #[error("refused: {what}, but encryption is required by {because} (age, authenticated)")]
    NotEncrypted {
        /// What the overlay is.
        what: &'static str,
        /// The source that requires encryption.
        because: String,
    },
}

/// What the boot knows about an overlay file besides its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayFacts<'a> {
    /// From the file name (`None`: not an overlay name, read as a plain gzip tar as Alpine does).
    pub kind: Option<&'a OverlayKind>,
    /// The host the file is for (its name's stem).
    pub host: &'a str,
    /// The newest generation the medium records for that host (`HOST.apkovl.generation`
    /// beside the overlay), `None` when it records none.
    pub min_generation: Option<u64>,
}

/// The verdict on an overlay: `facts` about the file, `verification` of its bytes as stored.
pub fn judge(
    policy: &OverlayPolicy,
    facts: &OverlayFacts<'_>,
    verification: &Verification,
) -> Result<Acceptance, Refusal> {
    let kind = facts.kind;
    if let Verification::Bad { reason } = verification {
        return Err(Refusal::BadSignature {
            reason: reason.clone(),
        });
    }
    if policy.require.encrypted {
        let what = match kind {
            Some(OverlayKind::Age) => None,
            Some(OverlayKind::Legacy(_)) | Some(OverlayKind::Unsupported(_)) => {
                Some("an openssl enc overlay is not authenticated")
            }
            Some(OverlayKind::Plain) | None => Some("a plain overlay"),
        };
        if let Some(what) = what {
            return Err(Refusal::NotEncrypted {
                what,
                because: policy.encrypted_because.clone().unwrap_or_default(),
            });
        }
    }
    if let Some(pinned) = policy.host.as_deref().filter(|h| *h != facts.host) {
        return Err(Refusal::OtherHost {
            found: facts.host.to_string(),
            pinned: pinned.to_string(),
        });
    }
    overlays::check_binding(
        verification,
        facts.host,
        facts.min_generation,
        policy.legacy_sig,
    )
    .map_err(Refusal::Binding)?;
    if let (Some(floor), Verification::Verified { statement, .. }) =
        (policy.not_before, verification)
    {
        let signed = statement.as_ref().map(|s| s.time);
        if signed.is_none_or(|t| t < floor) {
            return Err(Refusal::Stale { signed, floor });
        }
    }
    match (verification, policy.unsigned) {
        (Verification::Verified { key, .. }, _) => Ok(Acceptance::Verified { key: key.clone() }),
        (_, Unsigned::Refuse) => Err(Refusal::Unsigned {
            because: policy.signed_because.clone().unwrap_or_default(),
            keys: policy.keys,
        }),
        (_, Unsigned::Warn) => Ok(Acceptance::UnsignedWarn),
        (_, Unsigned::Accept) => Ok(Acceptance::Unsigned),
    }
}

/// Whether an overlay encrypted to an age recipient (not a passphrase) may be opened. Such a file
/// proves nothing about who made it: the recipient is public, and derivable from the identity in
/// the initramfs on the same medium. So when encryption is required it must be signed too; a
/// passphrase-encrypted one authenticates itself (only a holder of the passphrase made it).
pub fn check_recipient_overlay(
    policy: &OverlayPolicy,
    acceptance: &Acceptance,
) -> Result<(), String> {
    if !policy.require.encrypted || matches!(acceptance, Acceptance::Verified { .. }) {
        return Ok(());
    }
    Err(format!(
        "encrypted to an age recipient and not signed: anyone who knows the recipient can make \
         such a file, so it does not meet apkovl_require=encrypted ({}) without a signature",
        policy.encrypted_because.clone().unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use overlays::{Cipher, Statement};

    /// Review finding: with `apkovl_require=encrypted` and an identity in the image, anyone could
    /// encrypt an overlay of their own to the (public) recipient and have it applied.
    #[test]
    fn recipient_encryption_authenticates_nothing_without_a_signature() {
        let p = policy("apkovl_require=encrypted", true, "");
        let signed = Acceptance::Verified {
            key: "admin.pub".into(),
        };
        assert_eq!(check_recipient_overlay(&p, &signed), Ok(()));
        let e = check_recipient_overlay(&p, &Acceptance::Unsigned).unwrap_err();
        assert!(
            e.starts_with("encrypted to an age recipient and not signed"),
            "{e}"
        );
        assert!(check_recipient_overlay(&p, &Acceptance::UnsignedWarn).is_err());
        // Nothing asks for encryption: the file is just an encoding, as in Alpine.
        let any = policy("", false, "");
        assert_eq!(check_recipient_overlay(&any, &Acceptance::Unsigned), Ok(()));
    }

    const PLAIN: OverlayFacts<'static> = OverlayFacts {
        kind: Some(&OverlayKind::Plain),
        host: "fw1",
        min_generation: None,
    };

    fn of(kind: Option<&OverlayKind>) -> OverlayFacts<'_> {
        OverlayFacts { kind, ..PLAIN }
    }

    fn policy(image: &str, keys: bool, cmdline: &str) -> OverlayPolicy {
        overlay_policy(
            &BootPolicy::parse(image).unwrap(),
            keys,
            &BootConfig::from_cmdline(cmdline),
        )
    }

    /// Signed by a trusted key, with a statement for `host` at `generation`.
    fn signed_for(host: &str, generation: u64) -> Verification {
        Verification::Verified {
            key: "admin.pub".into(),
            statement: Some(Statement::new(b"overlay", host, 1_700_000_000, generation).unwrap()),
        }
    }

    fn verified() -> Verification {
        signed_for("fw1", 7)
    }

    fn legacy() -> Verification {
        Verification::Verified {
            key: "admin.pub".into(),
            statement: None,
        }
    }

    fn bad() -> Verification {
        Verification::Bad {
            reason: "wrong key".into(),
        }
    }

    #[test]
    fn default_is_alpines_no_checks() {
        let p = policy("", false, "");
        assert_eq!(p.require, OverlayRequirement::ANY);
        assert_eq!(p.unsigned, Unsigned::Accept);
        assert!(p.ignored.is_empty());
        assert_eq!(
            judge(&p, &PLAIN, &Verification::Unsigned),
            Ok(Acceptance::Unsigned)
        );
    }

    #[test]
    fn embedded_keys_require_a_signature() {
        let p = policy("", true, "");
        assert_eq!(p.require, OverlayRequirement::SIGNED);
        assert_eq!(p.unsigned, Unsigned::Refuse);
        let err = judge(&p, &PLAIN, &Verification::Unsigned).unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature check failed: unsigned, and a signature is required by overlay keys in \
             the initramfs (etc/apkovl/keys)"
        );
        assert_eq!(
            judge(&p, &PLAIN, &verified()),
            Ok(Acceptance::Verified {
                key: "admin.pub".into()
            })
        );
    }

    /// Issue 13 item 6: `apkovl_verify=off|optional` on the command line overrode the `required`
    /// that embedded keys imply, so whoever could edit the command line booted any overlay.
    #[test]
    fn command_line_cannot_loosen_what_the_image_implies() {
        for word in ["off", "optional", "no"] {
            let p = policy("", true, &format!("apkovl_verify={word}"));
            assert_eq!(p.unsigned, Unsigned::Refuse, "{word}");
            assert_eq!(p.require, OverlayRequirement::SIGNED, "{word}");
            assert_eq!(p.ignored.len(), 1, "{word}");
            assert!(
                p.ignored[0].contains("cannot loosen"),
                "{word}: {:?}",
                p.ignored
            );
            assert!(judge(&p, &PLAIN, &Verification::Unsigned).is_err());
        }
        // The image's policy file requires it too.
        let p = policy("apkovl_require=signed", false, "apkovl_verify=off");
        assert_eq!(p.unsigned, Unsigned::Refuse);
        let err = judge(&p, &of(None), &Verification::Unsigned).unwrap_err();
        assert!(
            err.to_string()
                .contains("etc/boot-policy apkovl_require=signed")
                && err.to_string().contains("holds no overlay keys"),
            "{err}"
        );
        // apkovl_require=any on the command line does not loosen either.
        let p = policy(
            "apkovl_require=signed,encrypted",
            true,
            "apkovl_require=any",
        );
        assert_eq!(
            p.require,
            OverlayRequirement {
                signed: true,
                encrypted: true
            }
        );
    }

    #[test]
    fn command_line_tightens() {
        let p = policy("", false, "apkovl_verify=required");
        assert_eq!(p.unsigned, Unsigned::Refuse);
        assert_eq!(
            p.signed_because.as_deref(),
            Some("apkovl_verify=required on the command line")
        );
        let p = policy("", false, "apkovl_require=signed");
        assert_eq!(p.unsigned, Unsigned::Refuse);
        let p = policy("", false, "apkovl_verify=optional");
        assert_eq!(p.unsigned, Unsigned::Warn);
        assert_eq!(
            judge(&p, &PLAIN, &Verification::Unsigned),
            Ok(Acceptance::UnsignedWarn)
        );
        let p = policy("apkovl_require=signed", true, "apkovl_require=encrypted");
        assert_eq!(
            p.require,
            OverlayRequirement {
                signed: true,
                encrypted: true
            }
        );
        assert_eq!(
            p.signed_because.as_deref(),
            Some("etc/boot-policy apkovl_require=signed")
        );
        assert_eq!(
            p.encrypted_because.as_deref(),
            Some("apkovl_require=encrypted on the command line")
        );
    }

    #[test]
    fn bad_signature_is_refused_whatever_the_policy() {
        for (image, keys, cmdline) in [
            ("", false, "apkovl_verify=off"),
            ("", false, "apkovl_verify=optional"),
            ("", true, ""),
        ] {
            let p = policy(image, keys, cmdline);
            assert_eq!(
                judge(&p, &PLAIN, &bad()).unwrap_err().to_string(),
                "signature check failed: bad signature: wrong key"
            );
        }
    }

    /// Issue 13 item 3: replacing `HOST.apkovl.tar.gz.age` by a plain `HOST.apkovl.tar.gz` got it
    /// applied without any prompt; where encryption is required, it stops the boot.
    #[test]
    fn encryption_required_refuses_plain_and_openssl_overlays() {
        let p = policy("apkovl_require=encrypted", false, "");
        for (kind, what) in [
            (Some(OverlayKind::Plain), "a plain overlay"),
            (None, "a plain overlay"),
            (
                Some(OverlayKind::Legacy(Cipher::Aes256Cbc)),
                "an openssl enc overlay is not authenticated",
            ),
        ] {
            let err = judge(&p, &of(kind.as_ref()), &Verification::Unsigned).unwrap_err();
            assert_eq!(
                err,
                Refusal::NotEncrypted {
                    what,
                    because: "etc/boot-policy apkovl_require=encrypted".into()
                }
            );
        }
        // Signed is not enough.
        assert!(judge(&p, &PLAIN, &verified()).is_err());
        assert_eq!(
            judge(&p, &of(Some(&OverlayKind::Age)), &Verification::Unsigned),
            Ok(Acceptance::Unsigned)
        );
        // From the command line too.
        let p = policy("", false, "apkovl_require=encrypted");
        let err = judge(&p, &PLAIN, &Verification::Unsigned).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused: a plain overlay, but encryption is required by apkovl_require=encrypted on \
             the command line (age, authenticated)"
        );
    }

    #[test]
    fn effective_policy_is_printable() {
        let p = policy("apkovl_legacy_sig=yes", true, "apkovl_require=encrypted");
        let text = p.to_string();
        assert!(
            text.contains("  apkovl_require=signed,encrypted\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    signed: required by overlay keys in the initramfs (etc/apkovl/keys)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "    encrypted: required by apkovl_require=encrypted on the command line\n"
            ),
            "{text}"
        );
        assert!(text.contains("  unsigned overlays: refused\n"), "{text}");
        assert!(text.contains("  apkovl_legacy_sig=yes\n"), "{text}");
        assert!(text.contains("  sealed=no\n"), "{text}");
    }

    /// Issue 13 item 5: a signature covered only the bytes, so another host's signed overlay,
    /// or an older signed backup, renamed to `HOST.apkovl.tar.gz` booted. The statement binds
    /// host and generation; the medium's generation file sets the minimum.
    #[test]
    fn swapped_and_replayed_overlays_are_refused() {
        let p = policy("", true, "");
        let at = |min: Option<u64>| OverlayFacts {
            min_generation: min,
            ..PLAIN
        };
        assert!(judge(&p, &at(Some(7)), &signed_for("fw1", 7)).is_ok());
        assert!(judge(&p, &at(None), &signed_for("fw1", 1)).is_ok());
        let err = judge(&p, &at(Some(7)), &signed_for("fw2", 9)).unwrap_err();
        assert!(
            matches!(err, Refusal::Binding(BindingError::OtherHost { .. })),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "signature check failed: apkovl for host fw1: signed for host fw2 (generation 9), \
             refusing a swapped overlay"
        );
        let err = judge(&p, &at(Some(7)), &signed_for("fw1", 6)).unwrap_err();
        assert!(
            matches!(err, Refusal::Binding(BindingError::Replayed { .. })),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("generation 6 is older than generation 7"),
            "{err}"
        );
    }

    /// Review finding: with one fleet key, fw2's overlay and signature copied onto fw1's stick
    /// (fw1's own removed) booted fw1 as fw2: nothing in the image said which host it is.
    #[test]
    fn an_image_pinned_to_a_host_boots_only_that_hosts_overlay() {
        let p = policy("apkovl_host=fw1", true, "");
        assert!(judge(&p, &PLAIN, &signed_for("fw1", 1)).is_ok());
        let fw2 = OverlayFacts {
            host: "fw2",
            ..PLAIN
        };
        let err = judge(&p, &fw2, &signed_for("fw2", 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refused: the overlay is for host fw2, and this image boots only fw1's \
             (etc/boot-policy apkovl_host=fw1)"
        );
        // The pin implies a signature, even without overlay keys or apkovl_require.
        let p = policy("apkovl_host=fw1", false, "apkovl_verify=off");
        assert_eq!(p.unsigned, Unsigned::Refuse);
        assert_eq!(
            judge(&p, &PLAIN, &Verification::Unsigned).unwrap_err().to_string(),
            "signature check failed: unsigned, and a signature is required by etc/boot-policy \
             apkovl_host=fw1; the initramfs holds no overlay keys to check one (mkinitfs --ovl-keys-dir)"
        );
        assert!(p.to_string().contains("  apkovl_host=fw1\n"), "{p}");
    }

    /// Review finding: an overlay fetched by URL has no generation file beside it, so a server
    /// could replay an older, validly signed overlay of the same host. The image's floor refuses
    /// anything signed before it; the floor implies a signature.
    #[test]
    fn an_image_with_a_floor_refuses_older_overlays() {
        let p = policy("apkovl_not_before=1700000000", true, "");
        assert!(
            judge(&p, &PLAIN, &signed_for("fw1", 1)).is_ok(),
            "signed at the floor"
        );
        let old = Verification::Verified {
            key: "admin.pub".into(),
            statement: Some(Statement::new(b"overlay", "fw1", 1_699_999_999, 9).unwrap()),
        };
        assert_eq!(
            judge(&p, &PLAIN, &old).unwrap_err().to_string(),
            "refused: the overlay was signed at 1699999999, before 1700000000, the oldest this \
             image boots (etc/boot-policy apkovl_not_before=1700000000): a replayed older overlay"
        );
        let p = policy(
            "apkovl_not_before=1700000000\napkovl_legacy_sig=yes",
            true,
            "",
        );
        assert_eq!(
            judge(&p, &PLAIN, &legacy()).unwrap_err(),
            Refusal::Stale {
                signed: None,
                floor: 1_700_000_000
            }
        );
        let p = policy("apkovl_not_before=1700000000", false, "apkovl_verify=off");
        assert_eq!(p.unsigned, Unsigned::Refuse);
        assert!(judge(&p, &PLAIN, &Verification::Unsigned)
            .unwrap_err()
            .to_string()
            .contains("required by etc/boot-policy apkovl_not_before=1700000000"));
        assert!(
            p.to_string().contains("  apkovl_not_before=1700000000\n"),
            "{p}"
        );
    }

    #[test]
    fn legacy_signatures_only_where_the_image_accepts_them() {
        let p = policy("", true, "");
        let err = judge(&p, &PLAIN, &legacy()).unwrap_err();
        assert!(
            matches!(err, Refusal::Binding(BindingError::Legacy { .. })),
            "{err}"
        );
        // The command line cannot turn them on; the image can.
        let p = policy("", true, "apkovl_legacy_sig=yes");
        assert!(judge(&p, &PLAIN, &legacy()).is_err());
        let p = policy("apkovl_legacy_sig=yes", true, "");
        assert_eq!(
            judge(&p, &PLAIN, &legacy()),
            Ok(Acceptance::Verified {
                key: "admin.pub".into()
            })
        );
    }
}
