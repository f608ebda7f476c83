//! What happens after a failure: the rescue shell and the `panic=` policy.
//!
//! Contract (documented for users):
//! - A failure prints one line `ERROR: <phase>: <what>: <why>` and the timeline so far.
//! - If `/bin/sh` exists in the initramfs (mkinitfs's `rescue` feature ships busybox there) and
//!   `panic=` is absent or `no`, a rescue shell opens on the console. When it exits, **the boot is
//!   retried from the start** (boot drivers, media discovery, ...), after unmounting what the
//!   failed attempt mounted under `/sysroot` and `/media`; so one can plug the right stick, load a
//!   module or fix a file, then `exit`. (Upstream continues after the failure point, which mostly
//!   leads to the next failure; docs/boot.md, "Failures".)
//! - Otherwise the kernel's `panic=` convention is followed: `panic=N` (N > 0) reboots after N
//!   seconds, a negative N reboots at once, `panic=0` or no `panic=` halts (the init waits forever,
//!   still reaping children). Any `panic=` value other than `no` also disables the shell, as in
//!   Alpine: the operator asked for unattended failure handling.
//! - A bug (a Rust panic in the init) takes the same path from the panic hook, except that after
//!   the shell the machine reboots: the init's state cannot be trusted for a retry.
//! - `s`/`single` opens the shell just before `switch_root`; exiting it continues the boot.
use std::path::Path;
use std::time::Duration;

use crate::cmdline::{PanicAction, PanicPolicy};
use crate::console;
use crate::sys::{self, PowerAction};

/// The rescue shell.
pub const SHELL: &str = "/bin/sh";

/// Whether the initramfs has a shell to offer.
pub fn shell_present() -> bool {
    sys::is_executable(Path::new(SHELL))
}

/// Whether a shell will be offered after a failure under `policy`.
pub fn offers_shell(policy: &PanicPolicy) -> bool {
    policy.shell_allowed && shell_present()
}

/// Runs the shell on the console after printing `banner`; returns its exit code.
pub fn run_shell(banner: &str) -> Option<i32> {
    console::print(banner);
    let env = [
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        ("HOME", "/"),
        ("TERM", "linux"),
        ("PS1", "(initramfs) # "),
    ];
    match sys::run_on_console(Path::new(SHELL), &[], &env) {
        Ok(code) => Some(code),
        Err(e) => {
            log::error!("rescue shell: {e}");
            None
        }
    }
}

/// The line announcing what `action` will do.
pub fn describe(action: PanicAction) -> String {
    match action {
        PanicAction::Halt => {
            "boot failed: system halted (boot with panic=N to reboot after N seconds)\n".to_string()
        }
        PanicAction::RebootAfter(d) => format!(
            "boot failed: rebooting in {} s (panic={})\n",
            d.as_secs(),
            d.as_secs()
        ),
        PanicAction::RebootNow => "boot failed: rebooting now (panic<0)\n".to_string(),
    }
}

/// Follows the `panic=` action. Never returns: halting means waiting forever.
pub fn follow_panic(action: PanicAction) -> ! {
    console::print(&describe(action));
    let reboot_at = match action {
        PanicAction::Halt => None,
        PanicAction::RebootAfter(d) => Some(sys::boottime() + d),
        PanicAction::RebootNow => Some(sys::boottime()),
    };
    loop {
        sys::reap_zombies();
        if let Some(at) = reboot_at {
            let now = sys::boottime();
            if now >= at {
                let errno = sys::power(PowerAction::Reboot);
                log::error!("reboot: {errno}; halting instead");
                halt_forever();
            }
            std::thread::sleep((at - now).min(Duration::from_millis(200)));
        } else {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn halt_forever() -> ! {
    loop {
        sys::reap_zombies();
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// After an internal error: shell if allowed, then reboot (or follow `panic=` without a shell).
pub fn after_bug(policy: &PanicPolicy) -> ! {
    if offers_shell(policy) {
        run_shell("Launching initramfs emergency recovery shell after an internal error.\nType 'exit' to reboot.\n");
        follow_panic(PanicAction::RebootNow)
    }
    follow_panic(policy.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions() {
        assert!(describe(PanicAction::Halt).contains("system halted"));
        assert_eq!(
            describe(PanicAction::RebootAfter(Duration::from_secs(1))),
            "boot failed: rebooting in 1 s (panic=1)\n"
        );
        assert!(describe(PanicAction::RebootNow).contains("rebooting now"));
    }

    #[test]
    fn shell_offer_needs_permission() {
        let no = PanicPolicy {
            shell_allowed: false,
            action: PanicAction::Halt,
        };
        assert!(!offers_shell(&no));
    }
}
