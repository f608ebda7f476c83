//! The rules of a sealed image (docs/boot.md, "Sealed images"): an initramfs whose boot policy
//! says `sealed=yes` was put inside a unified kernel image (`mkimage --uki`) with the kernel and
//! the command line, all covered by one Secure Boot signature. It records that command line in
//! [`bootspec::initramfs::SIGNED_CMDLINE`]. Then:
//!
//! - the boot parameters come from the signed command line only: `/proc/cmdline` must be exactly
//!   it, else the boot stops (a boot manager or firmware that passed other words, or a kernel
//!   started another way with this initramfs);
//! - no rescue shell unless the signed command line asks for one explicitly: `single` (`s`, `1`),
//!   or `panic=no` (`nopanic`) as its last `panic` word. Absent those, a failed boot prints its
//!   report and follows `panic=` (halt by default), whoever holds the console;
//! - nothing else is read for parameters: the init never reads its environment, and the
//!   credentials and system extensions systemd's stub adds from the EFI system partition
//!   (`/.extra`, not covered by the signature) are ignored;
//! - the overlay policy is the image's, which the command line can only tighten (as always).

use bootspec::initramfs::{POLICY, SIGNED_CMDLINE};
use bootspec::BootPolicy;

use crate::cmdline::words::split_kernel_words;
use crate::cmdline::{BootConfig, PanicPolicy};

/// Whether the initramfs is sealed, as its boot policy file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seal {
    /// No policy file, or one that says `sealed=no` (or nothing about it).
    Open,
    /// The policy says `sealed=yes`.
    Sealed,
    /// The policy could not be read, or does not parse and has a `sealed` line that is not
    /// `sealed=no`: the image may be sealed, so it boots as a refused sealed image would (no
    /// shell). A version skew (a policy written by a newer builder for an older init) must never
    /// turn a sealed image into an open one.
    Unknown(SealError),
}

/// Whether the image is sealed, from its policy file: `Ok(None)` when there is none, `Err` with
/// the reason when it could not be read.
pub fn seal_state(policy: Result<Option<String>, String>) -> Seal {
    let text = match policy {
        Ok(None) => return Seal::Open,
        Ok(Some(text)) => text,
        Err(reason) => return Seal::Unknown(SealError::PolicyUnreadable { reason }),
    };
    match BootPolicy::parse(&text) {
        Ok(p) if p.sealed => Seal::Sealed,
        Ok(_) => Seal::Open,
        Err(e) => {
            let may_be_sealed = text.lines().any(|line| {
                line.split_once('=')
                    .is_some_and(|(k, v)| k.trim() == "sealed" && v.trim() != "no")
            });
            if may_be_sealed {
                Seal::Unknown(SealError::PolicyUnreadable {
                    reason: e.to_string(),
                })
            } else {
                Seal::Open
            }
        }
    }
}

/// Why a sealed image refuses to boot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The policy file cannot be read or parsed, and may say `sealed=yes`.
    #[error(
        "/{POLICY}: {reason}: the image may be sealed, so it does not boot (and offers no shell)"
    )]
    PolicyUnreadable {
        /// Why it could not be read or parsed.
        reason: String,
    },
    /// The policy says sealed but the signed command line is missing.
    #[error("/{SIGNED_CMDLINE}: missing: a sealed image (sealed=yes) must record its signed command line")]
    NoSignedCmdline,
    /// `/proc/cmdline` is not the signed command line.
    #[error("/proc/cmdline is not the signed command line of this sealed image (/{SIGNED_CMDLINE}): got \"{running}\", signed \"{signed}\"")]
    CmdlineMismatch {
        /// What the kernel was started with.
        running: String,
        /// What the image was signed with.
        signed: String,
    },
}

/// Checks that the kernel runs with the signed command line. `/proc/cmdline` ends with a
/// newline, and boot loaders may add a trailing space: surrounding whitespace is not compared;
/// every other byte is.
pub fn check_cmdline(signed: Option<&str>, running: &str) -> Result<(), SealError> {
    let signed = signed.ok_or(SealError::NoSignedCmdline)?.trim();
    let running = running.trim();
    if signed != running {
        return Err(SealError::CmdlineMismatch {
            running: running.to_string(),
            signed: signed.to_string(),
        });
    }
    Ok(())
}

/// The failure policy of a sealed boot whose (signed) command line gave `cfg`: `panic=` is
/// followed as usual, and the rescue shell is offered only when that line asks for one
/// explicitly.
pub fn panic_policy(cfg: &BootConfig, signed: &str) -> PanicPolicy {
    PanicPolicy {
        shell_allowed: cfg.panic.shell_allowed && (cfg.single || asks_no_panic(signed)),
        action: cfg.panic.action,
    }
}

/// Whether the last `panic` word of `line` is `panic=no` or `nopanic` (later words win, as for
/// every option).
fn asks_no_panic(line: &str) -> bool {
    let mut asked = false;
    for p in split_kernel_words(line) {
        match (p.name.as_str(), p.value.as_deref()) {
            ("nopanic", None) | ("panic", Some("no")) => asked = true,
            ("panic", _) => asked = false,
            _ => {}
        }
    }
    asked
}

/// The warning for what systemd's stub added under `/.extra` (`None` when nothing is there).
pub fn stub_extras_note(present: bool) -> Option<String> {
    present.then(|| {
        format!(
            "/{}: ignored: credentials and system extensions from the EFI system partition are not covered by the image's signature",
            bootspec::initramfs::STUB_EXTRA_DIR
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::PanicAction;

    #[test]
    fn only_the_signed_command_line_boots() {
        let signed = "console=ttyS0 modloop=none";
        assert_eq!(
            check_cmdline(Some(signed), "console=ttyS0 modloop=none\n"),
            Ok(())
        );
        assert_eq!(
            check_cmdline(Some(signed), "console=ttyS0 modloop=none "),
            Ok(())
        );
        for other in [
            "console=ttyS0 modloop=none single",
            "console=ttyS0 modloop=none init=/bin/sh",
            "console=ttyS0  modloop=none",
            "BOOT_IMAGE=/boot/vmlinuz console=ttyS0 modloop=none",
            "",
        ] {
            assert_eq!(
                check_cmdline(Some(signed), other),
                Err(SealError::CmdlineMismatch {
                    running: other.trim().into(),
                    signed: signed.into()
                }),
                "{other}"
            );
        }
        assert_eq!(
            check_cmdline(None, signed).unwrap_err().to_string(),
            "/etc/boot-cmdline: missing: a sealed image (sealed=yes) must record its signed command line"
        );
    }

    #[test]
    fn a_policy_that_may_be_sealed_is_never_open() {
        assert_eq!(seal_state(Ok(None)), Seal::Open);
        assert_eq!(seal_state(Ok(Some("sealed=yes\n".into()))), Seal::Sealed);
        assert_eq!(seal_state(Ok(Some("sealed=no\n".into()))), Seal::Open);
        assert_eq!(
            seal_state(Ok(Some("apkovl_require=signed\n".into()))),
            Seal::Open
        );
        // Written by a newer builder: a key this init does not know.
        for text in [
            "sealed=yes\nfuture_key=1\n",
            " sealed = maybe\n",
            "sealed=yes\napkovl_require=maybe\n",
        ] {
            let Seal::Unknown(e) = seal_state(Ok(Some(text.into()))) else {
                panic!("{text:?} must not boot as an open image");
            };
            assert!(e.to_string().starts_with("/etc/boot-policy: "), "{e}");
            assert!(
                e.to_string().ends_with(
                    "the image may be sealed, so it does not boot (and offers no shell)"
                ),
                "{e}"
            );
        }
        // Malformed without a sealed line: the boot options phase reports it as before.
        assert_eq!(
            seal_state(Ok(Some("sealed=no\nfuture_key=1\n".into()))),
            Seal::Open
        );
        assert_eq!(
            seal_state(Err("larger than 65536 bytes".into())),
            Seal::Unknown(SealError::PolicyUnreadable {
                reason: "larger than 65536 bytes".into()
            })
        );
    }

    #[test]
    fn no_shell_unless_the_signed_line_asks_for_one() {
        let policy = |line: &str| panic_policy(&BootConfig::from_cmdline(line), line);
        // Unsealed, these would all offer the shell.
        for line in ["", "console=ttyS0", "panic=no panic=5 panic=no0"] {
            assert!(!policy(line).shell_allowed, "{line}");
        }
        assert_eq!(policy("quiet").action, PanicAction::Halt);
        for line in [
            "single",
            "s",
            "1",
            "panic=no",
            "nopanic",
            "panic=3 panic=no",
        ] {
            assert!(policy(line).shell_allowed, "{line}");
        }
        // A later panic= wins, and any panic=N disables the shell as it always does.
        assert!(!policy("panic=no panic=5").shell_allowed);
        assert!(!policy("single panic=1").shell_allowed);
        assert_eq!(
            policy("panic=1").action,
            PanicAction::RebootAfter(std::time::Duration::from_secs(1))
        );
    }

    #[test]
    fn stub_extras_are_reported() {
        assert_eq!(stub_extras_note(false), None);
        assert!(stub_extras_note(true)
            .unwrap()
            .starts_with("/.extra: ignored"));
    }
}
