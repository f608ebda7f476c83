//! The `init` binary: PID 1 of the initramfs. All logic is in the library; this links the real
//! overlay applier (`overlays` crate) and package installer (embedded `apk` core).

fn main() -> ! {
    let mut applier = init::applier::OverlaysApplier;
    let mut installer = init::installer::ApkInstaller;
    init::run(&mut applier, &mut installer)
}
