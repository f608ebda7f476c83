//! The init on its own (issue: init): an `alpine-base` system from a vfat medium made by
//! `mkimage`, with an initramfs made by `mkinitfs`, up to OpenRC's default runlevel; and a boot
//! without any medium, which must fail clearly into the documented rescue path.

use qemu_tests::{
    Disk, Env, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Opts, Overlay, Vm,
};

/// The 25 packages of the alpine-base closure on the 3.19.1 medium.
const ALPINE_BASE: [&str; 25] = [
    "alpine-base",
    "alpine-baselayout",
    "alpine-baselayout-data",
    "alpine-conf",
    "alpine-keys",
    "alpine-release",
    "apk-tools",
    "busybox",
    "busybox-binsh",
    "busybox-mdev-openrc",
    "busybox-openrc",
    "busybox-suid",
    "ca-certificates-bundle",
    "ifupdown-ng",
    "libc-utils",
    "libcap2",
    "libcrypto3",
    "libssl3",
    "mdev-conf",
    "musl",
    "musl-utils",
    "openrc",
    "scanelf",
    "ssl_client",
    "zlib",
];

#[test]
fn alpine_base_boots_to_the_default_runlevel() {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    // The scenario service runs last in the default runlevel, then powers off.
    let script = "echo QEMUTEST-UP\n\
        echo PKGCOUNT=$(apk info | wc -l)\n\
        apk info | sort | sed 's/^/PKG:/'\n\
        sed 's/^/TL:/' /var/log/boot-timeline.txt\n\
        echo QEMUTEST-DONE\n\
        sync; poweroff -f";
    let ovl = Overlay::new()
        .world(&["alpine-base"])
        .scenario(script)
        .tar_gz();
    let sig = env.sign_overlay(&ovl, "qemutest.apkovl.tar.gz");
    let medium = env.medium(&MediumRecipe {
        uki: qemu_tests::UkiRecipe::None,
        format: MediumFormat::Vfat,
        world: vec!["alpine-base".into()],
        project_repo: false,
        world_extra: vec![],
        label: "ALPINE".into(),
        cmdline: "modloop=none".into(),
        initramfs: initramfs.clone(),
        overlay: Some(("qemutest.apkovl.tar.gz".into(), ovl, Some(sig))),
    });
    let disk = env.copy_medium(&medium, "alpine-base");
    let image = Image::kernel(&env.kernel, &initramfs)
        .cmdline("modloop=none")
        .disk(Disk::virtio(disk));
    let mut vm = Vm::boot(&image, Opts::named("alpine-base"));
    vm.expect("apkovl signature verified (key overlay-test.pub)");
    vm.expect("(25/25) Installing alpine-base (3.19.1-r0)");
    vm.expect("OK: 10.2 MiB in 25 packages");
    vm.expect("boot timeline");
    vm.expect("packages installed: 25");
    vm.expect("OpenRC 0.52.1 is starting up");
    vm.expect("QEMUTEST-UP");
    vm.expect("PKGCOUNT=25");
    for p in ALPINE_BASE {
        vm.expect(&format!("PKG:{p}\n"));
    }
    vm.expect("TL:boot timeline");
    vm.expect("TL:  packages");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
    let tl = vm.timeline().unwrap_or_default();
    assert!(
        tl.contains("signature verified"),
        "timeline records the verified overlay:\n{tl}"
    );
}

/// No medium at all: one clear line, the timeline, then (no `/bin/sh` in this initramfs) the
/// `panic=` convention: reboot after 1 s, which ends qemu (`-no-reboot`). Never a kernel panic.
#[test]
fn no_medium_fails_clearly_and_follows_panic() {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let image = Image::kernel(&env.kernel, &initramfs).cmdline("panic=1");
    let mut vm = Vm::boot(&image, Opts::named("no-medium"));
    vm.expect("ERROR: ");
    vm.expect("no boot medium found");
    vm.expect("boot timeline");
    vm.expect("media discovery");
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("Kernel panic");
}

/// With the `rescue` feature (busybox as /bin/sh) the same failure opens a shell on the console;
/// leaving it retries the boot from the start.
#[test]
fn no_medium_with_rescue_shell() {
    let env = Env::get();
    let mut r = InitramfsRecipe::standard();
    r.features.push_str(" rescue");
    let initramfs = env.initramfs(&r);
    let image = Image::kernel(&env.kernel, &initramfs);
    let mut vm = Vm::boot(&image, Opts::named("no-medium-rescue"));
    vm.expect("no boot medium found");
    vm.expect("emergency recovery shell");
    std::thread::sleep(std::time::Duration::from_secs(1));
    vm.send("echo RESCUE-$((40+2))");
    vm.expect("RESCUE-42");
    vm.send("exit");
    vm.expect("retrying the boot (attempt 2)");
    vm.expect("no boot medium found");
    vm.expect("rescue shell");
    vm.expect("Type 'exit' to retry the boot.");
    std::thread::sleep(std::time::Duration::from_secs(1));
    vm.send("poweroff -f");
    vm.wait_poweroff();
    vm.refute("Kernel panic");
}

/// The `init=` of the scenarios below: runs as PID 1 of the new root (no OpenRC, so a boot costs
/// only the install), reports what the initramfs's init left there, and powers off.
const REPORT_INIT: &str = r#"#!/bin/sh
echo "NEWROOT-INIT pid=$$ args=$*"
sed 's/^/TL:/' /var/log/boot-timeline.txt
echo "--- fstab"; cat /etc/fstab
echo "--- repositories"; cat /etc/apk/repositories
echo "--- world $(cat /etc/apk/world | tr '\n' ' ')"
echo "--- hostname $(cat /etc/hostname)"
echo "--- boot runlevel $(ls /etc/runlevels/boot | tr '\n' ' ')"
echo "--- default runlevel $(ls /etc/runlevels/default | tr '\n' ' ')"
echo "--- sshd link $(readlink /etc/runlevels/default/sshd)"
echo "--- marker $([ -e /etc/.default_boot_services ] && echo present || echo gone)"
echo "--- motd $([ -e /etc/motd ] && echo present || echo gone)"
echo "--- inittab"; grep ttyS0 /etc/inittab
echo "--- ssh modes $(stat -c %a /root/.ssh /root/.ssh/authorized_keys 2>/dev/null | tr '\n' ' ')"
echo "--- key $(cat /root/.ssh/authorized_keys 2>/dev/null)"
echo "--- media $(ls /media | tr '\n' ' ')"
echo "--- medium $(ls /media/*/apks | tr '\n' ' ')"
echo "--- mounts"; cut -d' ' -f2,3,4 /proc/mounts
echo NEWROOT-DONE
sync
poweroff -f
"#;

/// A medium with the packages the scenarios below install, and `overlay` (signed).
fn report_medium(name: &str, overlay: Overlay) -> std::path::PathBuf {
    let env = Env::get();
    let ovl = overlay
        .file_mode("etc/qemutest-report", REPORT_INIT, 0o755)
        .tar_gz();
    let sig = env.sign_overlay(&ovl, "qemutest.apkovl.tar.gz");
    let medium = env.medium(&MediumRecipe {
        uki: qemu_tests::UkiRecipe::None,
        format: MediumFormat::Vfat,
        world: vec!["alpine-base".into(), "chrony".into(), "openssh".into()],
        project_repo: false,
        world_extra: vec![],
        label: "ALPINE".into(),
        cmdline: "modloop=none".into(),
        initramfs: env.initramfs(&InitramfsRecipe::standard()),
        overlay: Some(("qemutest.apkovl.tar.gz".into(), ovl, Some(sig))),
    });
    env.copy_medium(&medium, name)
}

fn boot_report(name: &str, disk: &std::path::Path, cmdline: &str) -> Vm {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let image = Image::kernel(&env.kernel, &initramfs)
        .cmdline(&format!(
            "modloop=none panic=1 init=/etc/qemutest-report {cmdline}"
        ))
        .disk(Disk::virtio(disk));
    Vm::boot(&image, Opts::named(name))
}

/// The mounts the new root's init sees: its tmpfs root, the medium at its final mount point, and
/// the initramfs's `/proc`, `/dev` and `/run` moved in.
fn assert_new_root_mounts(vm: &mut Vm, medium_at: &str) {
    let log = vm.text();
    let (Some(a), Some(b)) = (log.rfind("--- mounts"), log.rfind("NEWROOT-DONE")) else {
        vm.fail("no mount list from the new root");
    };
    let mounts = log[a..b].to_string();
    for m in [
        "/ tmpfs rw".to_string(),
        format!("{medium_at} vfat ro,"),
        "/proc proc rw".into(),
        "/dev devtmpfs".into(),
        "/run tmpfs".into(),
    ] {
        if !mounts.contains(&m) {
            vm.fail(&format!("{m:?} not in the new root's mounts:\n{mounts}"));
        }
    }
}

/// Moved from the init's own test-double boot: the command line's choices reach the new root
/// (install list, hostname, ssh key, init and its arguments, serial getty), with Alpine's default
/// services, the medium at `/media/usb`, and every mount carried over.
#[test]
fn command_line_choices_reach_the_new_root() {
    let disk = report_medium(
        "cmdline-choices",
        Overlay::new().file("etc/.default_boot_services", ""),
    );
    let mut vm = boot_report(
        "cmdline-choices",
        &disk,
        "hostname=fw1 pkgs=chrony,bad$token init_args=\"one two\" \
         ssh_key=\"ssh-ed25519 AAAAC3NzaTEST test@qemu\"",
    );
    for marker in [
        "vda1: vfat LABEL=ALPINE",
        "apkovl signature verified (key overlay-test.pub)",
        "boot repository /media/usb/apks",
        "pkgs=: 'bad$token' is not a valid world dependency",
        "Installing packages to root filesystem",
        "Installing chrony (",
        "Installing openssh (",
        "boot timeline (CLOCK_BOOTTIME):",
        "exec /etc/qemutest-report",
        "NEWROOT-INIT pid=1 args=one two",
        "TL:boot timeline (CLOCK_BOOTTIME):",
        "TL:  switch_root",
        "--- fstab",
        "LABEL=ALPINE /media/usb vfat noauto,ro 0 0",
        "--- repositories",
        "/media/usb/apks",
        "--- world alpine-base chrony openssh \n",
        "--- hostname fw1\n",
        "--- boot runlevel bootmisc hostname hwclock modules sysctl syslog \n",
        "--- default runlevel firstboot sshd \n",
        "--- sshd link /etc/init.d/sshd\n",
        "--- marker gone",
        "--- motd present",
        "--- inittab",
        "ttyS0::respawn:/sbin/getty -L 0 ttyS0 vt100",
        "--- ssh modes 700 600 \n",
        "--- key ssh-ed25519 AAAAC3NzaTEST test@qemu\n",
        "--- media cdrom floppy usb \n",
        "--- mounts",
        "NEWROOT-DONE",
    ] {
        vm.expect(marker);
    }
    assert_new_root_mounts(&mut vm, "/media/usb");
    vm.wait_poweroff();
}

/// Moved from the init's own test-double boot: the overlay's choices win over the command line's
/// and the defaults: its hostname, its world, its fstab naming the medium's mount point, no
/// default services without the marker, and its deletion manifest removes a file a package
/// installed.
#[test]
fn overlay_choices_win() {
    let disk = report_medium(
        "overlay-choices",
        Overlay::new()
            .file("etc/hostname", "ovlhost\n")
            .world(&["alpine-base", "chrony"])
            .file("etc/fstab", "LABEL=ALPINE /media/boot vfat noauto,ro 0 0\n")
            .deleted(&["etc/motd"]),
    );
    let mut vm = boot_report("overlay-choices", &disk, "hostname=fw1");
    for marker in [
        "at /media/vda1: boot repository apks/, apkovl qemutest.apkovl.tar.gz",
        "Loading user settings from /media/vda1/qemutest.apkovl.tar.gz",
        "apkovl signature verified (key overlay-test.pub)",
        // The overlay's fstab names the medium: it moves to /media/boot.
        "boot repository /media/boot/apks",
        "Installing chrony (",
        "NEWROOT-INIT pid=1",
        "LABEL=ALPINE /media/boot vfat noauto,ro 0 0",
        "--- world alpine-base chrony \n",
        // hostname= does not override the overlay's /etc/hostname.
        "--- hostname ovlhost\n",
        "--- default runlevel \n",
        // The deletion manifest removed a file a package installed.
        "--- motd gone",
        "--- media boot cdrom floppy usb \n",
        "NEWROOT-DONE",
    ] {
        vm.expect(marker);
    }
    assert_new_root_mounts(&mut vm, "/media/boot");
    vm.wait_poweroff();
}

/// A package the boot repository does not have: apk's report names it, the boot stops in the
/// packages phase, and `panic=1` reboots.
#[test]
fn missing_package_stops_the_boot() {
    let disk = report_medium(
        "missing-package",
        Overlay::new().file("etc/.default_boot_services", ""),
    );
    let mut vm = boot_report("missing-package", &disk, "pkgs=no-such-package");
    vm.expect("no-such-package (no such package)");
    vm.expect("ERROR: packages: install no-such-package alpine-base");
    vm.expect("boot timeline");
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("NEWROOT-INIT");
}
