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
//!
//! The verified chain (`mkimage --uki --sb-key --sb-cert`): OVMF in Secure Boot mode with
//! Debian's snakeoil test key enrolled boots the signed unified kernel image to OpenRC, and
//! refuses the same image with one byte of its initramfs changed and an unsigned one, before
//! any kernel starts. A sealed boot that fails (an overlay whose signature does not verify)
//! stops without a rescue shell although the initramfs has one; a sealed initramfs started with
//! another command line than the signed one stops too.

use qemu_tests::{
    vfat, Disk, Env, Firmware, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Opts, Overlay,
    UkiRecipe, Vm,
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
    medium_with(format, UkiRecipe::None, &InitramfsRecipe::standard())
}

fn medium_with(
    format: MediumFormat,
    uki: UkiRecipe,
    recipe: &InitramfsRecipe,
) -> std::path::PathBuf {
    let env = Env::get();
    let initramfs = env.initramfs(recipe);
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .file("etc/hostname", "fwtest\n")
        .scenario(SCRIPT)
        .tar_gz();
    let sig = env.sign_overlay(&ovl, "fwtest.apkovl.tar.gz");
    env.medium(&MediumRecipe {
        uki,
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

/// The Secure Boot firmware boots the signed unified kernel image, whose sealed initramfs boots
/// with the signed command line to OpenRC.
#[test]
fn secure_boot_ovmf_boots_the_signed_uki_to_openrc() {
    let name = "sb-ovmf-signed-uki";
    let env = Env::get();
    let medium = medium_with(
        MediumFormat::Vfat,
        UkiRecipe::Snakeoil,
        &InitramfsRecipe::standard(),
    );
    let copy = env.copy_medium(&medium, name);
    let image = Image::firmware().disk(Disk::usb(&copy).boot(0));
    let mut vm = Vm::boot(
        &image,
        Opts::named(name).firmware(Firmware::ovmf_snakeoil()),
    );
    vm.expect("EFI stub: UEFI Secure Boot is enabled.");
    vm.expect("Linux version");
    vm.expect("Command line: console=ttyS0 no_timer_check modloop=none");
    vm.expect("secureboot: Secure boot enabled");
    vm.expect("sealed image: boot parameters from the signed command line only; rescue shell off");
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("OpenRC 0.52.1 is starting up");
    vm.expect("FWTEST-UP");
    vm.expect("FWTEST-CMDLINE=console=ttyS0 no_timer_check modloop=none");
    vm.expect("FWTEST-DONE");
    vm.wait_poweroff();
    vm.refute("GNU GRUB");
    eprintln!("{name}: Secure Boot\n{}", vm.events());
}

/// Boots `disk` under the Secure Boot firmware and expects the firmware to refuse the medium's
/// boot loader: the refusal on the console and no kernel start.
fn expect_refusal(name: &str, disk: &std::path::Path) {
    let image = Image::firmware().disk(Disk::usb(disk).boot(0));
    let mut vm = Vm::boot(
        &image,
        Opts::named(name).firmware(Firmware::ovmf_snakeoil()),
    );
    vm.expect_one(&["Access Denied", "Security Violation"]);
    // The firmware goes on to its next boot options (none here but its own shell or menu).
    vm.expect_one(&[
        "Shell>",
        "UEFI Interactive Shell",
        "Boot Manager",
        "No bootable option",
    ]);
    vm.refute("EFI stub");
    vm.refute("Linux version");
    eprintln!("{name}: refused by the firmware\n{}", vm.events());
}

/// One byte of the signed image's `.initrd` section changed: the signature no longer matches.
#[test]
fn secure_boot_ovmf_refuses_a_uki_whose_initrd_changed() {
    let name = "sb-ovmf-tampered-uki";
    let env = Env::get();
    let medium = medium_with(
        MediumFormat::Vfat,
        UkiRecipe::Snakeoil,
        &InitramfsRecipe::standard(),
    );
    let copy = env.copy_medium(&medium, name);
    let path = bootspec::medium::EFI_BOOT_X64;
    vfat::edit(&copy, path, |uki| {
        let pe = goblin::pe::PE::parse(uki).expect("a PE image");
        let initrd = pe
            .sections
            .iter()
            .find(|s| s.name().ok() == Some(".initrd"))
            .expect("an .initrd section");
        let at = initrd.pointer_to_raw_data as usize + initrd.size_of_raw_data as usize / 2;
        uki[at] ^= 0x01;
    });
    expect_refusal(name, &copy);
}

/// An unsigned unified kernel image (`mkimage --uki` without `--sb-key`).
#[test]
fn secure_boot_ovmf_refuses_an_unsigned_uki() {
    let name = "sb-ovmf-unsigned-uki";
    let env = Env::get();
    let medium = medium_with(
        MediumFormat::Vfat,
        UkiRecipe::Unsigned,
        &InitramfsRecipe::standard(),
    );
    let copy = env.copy_medium(&medium, name);
    expect_refusal(name, &copy);
}

/// A sealed boot that fails hands out no shell, although the initramfs has one (the `rescue`
/// feature) and the command line does not say `panic=`: here the overlay's signature does not
/// verify (its signed statement names another host's file).
#[test]
fn a_failed_sealed_boot_offers_no_rescue_shell() {
    let name = "sb-ovmf-sealed-failure";
    let env = Env::get();
    let mut recipe = InitramfsRecipe::standard();
    recipe.features.push_str(" rescue");
    let medium = medium_with(MediumFormat::Vfat, UkiRecipe::Snakeoil, &recipe);
    let copy = env.copy_medium(&medium, name);
    vfat::edit(&copy, "fwtest.apkovl.tar.gz", |ovl| {
        let last = ovl.len() - 1;
        ovl[last] ^= 0x01;
    });
    let image = Image::firmware().disk(Disk::usb(&copy).boot(0));
    let mut vm = Vm::boot(
        &image,
        Opts::named(name).firmware(Firmware::ovmf_snakeoil()),
    );
    vm.expect("sealed image: boot parameters from the signed command line only; rescue shell off");
    // The halt line comes with the error in one burst: wait for it, then read what preceded it.
    vm.expect("boot failed: system halted");
    let text = vm.text();
    assert!(
        text.contains("ERROR: overlay: /media/sda1/fwtest.apkovl.tar.gz: signature check failed"),
        "the overlay's refusal"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    vm.refute("emergency recovery shell");
    vm.refute("(initramfs) #");
    eprintln!("{name}: no shell\n{}", vm.events());
}

/// A sealed initramfs started with another command line than the one it was signed with (here
/// by qemu's `-kernel`, as a boot manager passing its own options would) stops at once.
#[test]
fn a_sealed_initramfs_refuses_another_command_line() {
    let env = Env::get();
    let mut recipe = InitramfsRecipe::standard();
    recipe.features.push_str(" rescue");
    let base = env.initramfs(&recipe);
    let policy = bootspec::BootPolicy {
        sealed: true,
        ..Default::default()
    }
    .render();
    let signed = "console=ttyS0 no_timer_check modloop=none";
    let sealed = env.initramfs_with(
        &base,
        &[
            (bootspec::initramfs::POLICY, policy.as_bytes(), 0o644),
            (
                bootspec::initramfs::SIGNED_CMDLINE,
                signed.as_bytes(),
                0o644,
            ),
        ],
    );
    let image = Image::kernel(&env.kernel, &sealed).cmdline("modloop=none single");
    let mut vm = Vm::boot(&image, Opts::named("sealed-other-cmdline"));
    vm.expect("boot failed: system halted");
    assert!(vm.text().contains(
        "ERROR: early setup: /proc/cmdline is not the signed command line of this sealed image"
    ));
    std::thread::sleep(std::time::Duration::from_secs(2));
    vm.refute("emergency recovery shell");
    vm.refute("Entering single mode");
}
