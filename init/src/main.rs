//! The `init` binary: PID 1 of the initramfs. All logic is in the library; this picks the
//! implementations of the two delegated steps.
//!
//! TEMPORARY SEAM: the overlay applier (crate `overlays`) and the package installer (crate `apk`)
//! are not linked yet; [`init::overlay::NotLinkedApplier`] and
//! [`init::install::NotLinkedInstaller`] make those steps fail with a clear "not linked in this
//! build" error until the lead replaces them here.

fn main() -> ! {
    let mut applier = init::overlay::NotLinkedApplier;
    let mut installer = init::install::NotLinkedInstaller;
    init::run(&mut applier, &mut installer)
}
