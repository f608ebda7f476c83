//! Appliance profiles end to end (issue 16): `mkimage --profile DIR` builds a USB image that a PC
//! boots from its firmware (SeaBIOS, the image attached as a USB stick, syslinux's menu), as a
//! user would write it to a stick with `dd`.
//! - a minimal profile made here: alpine-base, one file in `rootfs/etc/`, a host name;
//! - the project's jumphost profile, as `make appliance` builds it and `make demo` boots it, with
//!   its signed modloop (issue 11): WireGuard, nftables, VLANs and bridges load from it.

use qemu_tests::{profile, Disk, Env, Firmware, Image, Net, Opts, Vm};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Boot `img` from the firmware as a USB stick, picking the boot menu's serial-console entry.
fn boot_from_the_stick(img: &Path, name: &str) -> Vm {
    let image = Image::firmware().disk(Disk::usb(img).boot(0));
    let mut vm = Vm::boot(
        &image,
        Opts::named(name)
            .firmware(Firmware::SeaBios)
            .net(Net::user()),
    );
    // Type the entry once syslinux's prompt is there (keys sent while it draws its menu are
    // lost; the menu's text reaches the serial port interleaved with cursor movements).
    vm.expect("boot:");
    std::thread::sleep(std::time::Duration::from_millis(200));
    vm.send("serial");
    vm
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_minimal_profile_boots_with_its_file_and_hostname() {
    let work = tempfile::tempdir().unwrap();
    let prof = work.path().join("mini");
    let script = "#!/bin/sh\n\
        echo \"HOSTNAME=$(hostname)\"\n\
        echo \"FILE=$(cat /etc/profile-test.conf)\"\n\
        echo \"MODE=$(stat -c %a /etc/profile-test.conf)\"\n\
        echo \"PKGS=$(apk info | wc -l)\"\n\
        sed 's/^/TL:/' /var/log/boot-timeline.txt\n\
        echo QEMUTEST-DONE\n\
        sync; poweroff -f\n";
    // The profile, one file of the appliance's own, and a service that shows what the box sees
    // and powers it off, last in the default runlevel.
    for (path, text, mode) in [
        (
            "profile.toml",
            "world = [\"alpine-base\"]\nhostname = \"mini-fw\"\n",
            0o644,
        ),
        ("rootfs/etc/profile-test.conf", "made by a profile\n", 0o640),
        ("rootfs/etc/.default_boot_services", "", 0o644),
        (
            "rootfs/etc/init.d/qemutest",
            qemu_tests::overlay::SERVICE,
            0o755,
        ),
        ("rootfs/etc/qemutest.sh", script, 0o755),
        // Alpine's lbu leaves etc/init.d out unless lbu.list names it (mkimage warns).
        (
            "rootfs/etc/apk/protected_paths.d/lbu.list",
            "+etc/init.d/qemutest\n",
            0o644,
        ),
    ] {
        write(&prof.join(path), text, mode);
    }
    std::fs::create_dir_all(prof.join("rootfs/etc/runlevels/default")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/init.d/qemutest",
        prof.join("rootfs/etc/runlevels/default/qemutest"),
    )
    .unwrap();
    let img = work.path().join("mini.img");
    let o = profile::build(&prof, &img, work.path(), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("[1/5]"), "{stdout}");
    assert!(stdout.contains("25 packages"), "{stdout}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("WARNING"), "{stderr}");

    let mut vm = boot_from_the_stick(&img, "profile-minimal");
    vm.expect("OpenRC");
    vm.expect("HOSTNAME=mini-fw\n");
    vm.expect("FILE=made by a profile\n");
    vm.expect("MODE=640\n");
    vm.expect("PKGS=25\n");
    // The overlay was the profile's, signed with the generated overlay key.
    vm.expect("signature verified (overlay.key.pub)");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
}

#[test]
fn the_jumphost_profile_builds_and_boots_as_make_demo_does() {
    let env = Env::get();
    let work = tempfile::tempdir().unwrap();
    let img = work.path().join("jumphost.img");
    let o = profile::build(&profile::jumphost(), &img, work.path(), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("modloop"), "{stdout}");
    // The medium carries the signed modloop beside the kernel.
    let flavor = env.kver.rsplit('-').next().unwrap();
    let modloop = format!("boot/modloop-{flavor}");
    for f in [modloop.clone(), format!("{modloop}.sig")] {
        assert!(
            qemu_tests::vfat::exists(&img, &f),
            "{f} missing on the medium"
        );
    }

    let mut vm = boot_from_the_stick(&img, "profile-jumphost");
    vm.expect("jumphost login:");
    std::thread::sleep(std::time::Duration::from_millis(500));
    vm.send("root");
    vm.expect(":~#");
    vm.send(
        "modprobe wireguard && modprobe nf_tables && modprobe 8021q && modprobe bridge && \
         ip link add wg0 type wireguard && echo MODULES-$((40+2))",
    );
    vm.expect("MODULES-42");
    vm.send("rc-status default | grep -c started; echo SERVICES-SHOWN");
    vm.expect("SERVICES-SHOWN");
    vm.send("for s in sshd chronyd; do rc-service $s status >/dev/null && echo UP-$s; done");
    vm.expect("UP-sshd");
    vm.expect("UP-chronyd");
    vm.send("cat /etc/motd | head -1; apk info -e lbu openssh chrony | tr '\\n' ' '; echo; echo WORLD-SHOWN");
    vm.expect("lbu openssh chrony");
    vm.expect("WORLD-SHOWN");
    // The timeline: the signed overlay and the modloop verified with the generated keys.
    vm.send("grep -E '^ *(overlay|modloop) ' /var/log/boot-timeline.txt; echo TIMELINE-SHOWN");
    vm.expect("signature verified (overlay.key.pub)");
    vm.expect("verified by medium.rsa.pub");
    vm.expect("TIMELINE-SHOWN");
    vm.send("poweroff");
    vm.wait_poweroff();
}
