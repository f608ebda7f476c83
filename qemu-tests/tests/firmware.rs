//! Booting from the firmware, as a PC does (issue 10): no `-kernel`. The firmware (SeaBIOS or
//! OVMF) finds the boot loader `mkimage` installed on the medium (syslinux or isolinux for BIOS,
//! GRUB as `EFI/BOOT/BOOTX64.EFI` for UEFI), which loads our kernel and initramfs with the
//! command line from the medium; the init installs `alpine-base` from the medium and applies the
//! signed overlay, whose service reports from OpenRC's default runlevel and powers off.
//!
//! The matrix: each firmware with the USB image as a USB disk, the ISO as a CD-ROM, and the same
//! ISO as a USB disk. One boot per case; the console shows the firmware, the boot loader, the
//! kernel and the init's timeline. Each test prints its run's timeline (seconds from power-on to
//! each marker) for the record; nothing asserts a time.

use qemu_tests::{
    Disk, Env, Firmware, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Opts, Overlay, Vm,
};

/// The serial console and no IO-APIC timer check (see `machine::KERNEL_CONSOLE`), which a
/// firmware boot must get from the medium's boot loader configuration.
const CMDLINE: &str = "console=ttyS0 no_timer_check";

/// The scenario: proves the overlay was applied and OpenRC reached the default runlevel.
const SCRIPT: &str = "echo FWTEST-UP\n\
    echo FWTEST-CMDLINE=$(cat /proc/cmdline)\n\
    sed 's/^/TL:/' /var/log/boot-timeline.txt\n\
    echo FWTEST-DONE\n\
    sync; poweroff -f";

fn medium(format: MediumFormat) -> std::path::PathBuf {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .file("etc/hostname", "fwtest\n")
        .scenario(SCRIPT)
        .tar_gz();
    let sig = env.sign_overlay(&ovl, "fwtest.apkovl.tar.gz");
    env.medium(&MediumRecipe {
        format,
        world: vec!["alpine-base".into()],
        project_repo: false,
        world_extra: vec![],
        label: "ALPFW".into(),
        cmdline: CMDLINE.into(),
        initramfs,
        overlay: Some(("fwtest.apkovl.tar.gz".into(), ovl, Some(sig))),
    })
}

/// Boots `disk` (made by `disk_of` from a private copy of the medium) under `firmware`, expects
/// `loader` on the console, then the kernel, the init and OpenRC with the overlay applied.
fn boot(
    name: &str,
    firmware: Firmware,
    format: MediumFormat,
    disk: fn(&std::path::Path) -> Disk,
    loader: &str,
) {
    let env = Env::get();
    let copy = env.copy_medium(&medium(format), name);
    let image = Image::firmware().disk(disk(&copy).boot(0));
    let mut vm = Vm::boot(&image, Opts::named(name).firmware(firmware));
    vm.expect(loader);
    vm.expect("Linux version");
    vm.expect("Command line: ");
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("boot timeline");
    vm.expect("OpenRC 0.52.1 is starting up");
    vm.expect("FWTEST-UP");
    vm.expect("FWTEST-CMDLINE=");
    vm.expect("console=ttyS0 no_timer_check modloop=none");
    vm.expect("TL:boot timeline");
    vm.expect("FWTEST-DONE");
    vm.wait_poweroff();
    eprintln!("{name}: firmware boot\n{}", vm.events());
}

#[test]
fn seabios_boots_the_usb_image_from_a_usb_disk() {
    boot(
        "fw-seabios-usb",
        Firmware::SeaBios,
        MediumFormat::Vfat,
        |p| Disk::usb(p),
        "SYSLINUX 6.04",
    );
}

#[test]
fn ovmf_boots_the_usb_image_from_a_usb_disk() {
    boot(
        "fw-ovmf-usb",
        Firmware::ovmf(),
        MediumFormat::Vfat,
        |p| Disk::usb(p),
        "GNU GRUB",
    );
}

#[test]
fn seabios_boots_the_iso_from_a_cdrom() {
    boot(
        "fw-seabios-cd",
        Firmware::SeaBios,
        MediumFormat::Iso,
        |p| Disk::cdrom(p),
        "ISOLINUX 6.04",
    );
}

#[test]
fn ovmf_boots_the_iso_from_a_cdrom() {
    boot(
        "fw-ovmf-cd",
        Firmware::ovmf(),
        MediumFormat::Iso,
        |p| Disk::cdrom(p),
        "GNU GRUB",
    );
}

#[test]
fn seabios_boots_the_iso_from_a_usb_disk() {
    boot(
        "fw-seabios-iso-usb",
        Firmware::SeaBios,
        MediumFormat::Iso,
        |p| Disk::usb(p),
        "ISOLINUX 6.04",
    );
}

#[test]
fn ovmf_boots_the_iso_from_a_usb_disk() {
    boot(
        "fw-ovmf-iso-usb",
        Firmware::ovmf(),
        MediumFormat::Iso,
        |p| Disk::usb(p),
        "GNU GRUB",
    );
}
