//! The harness itself, without a kernel or the build's binaries: on a machine that never runs
//! (`-S`) the monitor answers, a card can be hotplugged onto a prepared network, and a failed
//! expectation reports the run's timeline; the firmware shapes the firmware boots will use
//! (SeaBIOS and OVMF, with and without Secure Boot, USB sticks and CD-ROMs as boot devices) start
//! and look for something to boot. Seconds each.

use std::time::Duration;

use qemu_tests::{Disk, Firmware, Image, Net, Opts, Vm};

fn paused(name: &str) -> Vm {
    let opts = Opts {
        monitor: true,
        paused: true,
        ..Opts::named(name)
    }
    .net(Net::user().id("hot").unplugged());
    Vm::boot(&Image::firmware(), opts)
}

#[test]
fn monitor_answers_and_hotplugs_a_card() {
    let mut vm = paused("harness-monitor");
    let status = vm.monitor("info status");
    assert!(status.contains("VM status: paused"), "{status:?}");
    let added = vm.monitor("device_add e1000,netdev=hot,id=nic1,mac=52:54:00:12:34:99");
    assert!(!added.contains("Error"), "{added:?}");
    let net = vm.monitor("info network");
    assert!(
        net.contains("nic1") && net.contains("52:54:00:12:34:99"),
        "{net:?}"
    );
    vm.monitor("quit");
    vm.wait_poweroff();
}

#[test]
#[should_panic(expected = "timed out waiting for [\"never printed\"]")]
fn a_missed_marker_fails_with_the_timelines() {
    let mut vm = paused("harness-timeout");
    vm.expect_within("never printed", Duration::from_secs(2));
}

/// An empty raw image, as a stick or disc without anything to boot.
fn blank(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p)
        .and_then(|f| f.set_len(8 << 20))
        .expect("a blank image");
    p
}

/// SeaBIOS boots from the devices with a boot index, in order: a USB stick on qemu-xhci (a hard
/// disk to the BIOS), then a CD-ROM; its text reaches the serial console.
#[test]
fn seabios_tries_the_usb_stick_then_the_cdrom() {
    let dir = tempfile::tempdir().unwrap();
    let image = Image::firmware()
        .disk(Disk::usb(blank(&dir, "stick.img")).boot(0))
        .disk(Disk::cdrom(blank(&dir, "disc.iso")).boot(1));
    let mut vm = Vm::boot(&image, Opts::named("harness-seabios"));
    vm.expect("SeaBIOS");
    vm.expect("Booting from Hard Disk...");
    vm.expect("Boot failed: not a bootable disk");
    vm.expect("Booting from DVD/CD...");
    vm.power_cut();
}

/// OVMF from its two pflash units (the code read-only, a private copy of the variables) finds
/// the USB stick; in Secure Boot mode (q35, SMM, secure pflash, Debian's test keys enrolled) it
/// starts the same way.
#[test]
fn ovmf_with_and_without_secure_boot_finds_the_usb_stick() {
    let dir = tempfile::tempdir().unwrap();
    let stick = blank(&dir, "stick.img");
    for (name, firmware) in [
        ("harness-ovmf", Firmware::ovmf()),
        ("harness-ovmf-sb", Firmware::ovmf_snakeoil()),
    ] {
        let image = Image::firmware().disk(Disk::usb(&stick).boot(0));
        let mut vm = Vm::boot(&image, Opts::named(name).firmware(firmware));
        vm.expect("BdsDxe: failed to load Boot0001 \"UEFI QEMU QEMU USB HARDDRIVE");
        vm.power_cut();
    }
}
