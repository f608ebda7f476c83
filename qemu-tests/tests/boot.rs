//! The init on its own (issue: init): an `alpine-base` system from a vfat medium made by
//! `mkimage`, with an initramfs made by `mkinitfs`, up to OpenRC's default runlevel; and a boot
//! without any medium, which must fail clearly into the documented rescue path.

use qemu_tests::{Disk, Env, InitramfsRecipe, MediumFormat, MediumRecipe, Overlay, Vm};

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
    let sig = env.sign_overlay(&ovl);
    let medium = env.medium(&MediumRecipe {
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
    let mut vm = Vm::boot(
        "alpine-base",
        &env.kernel,
        &initramfs,
        "modloop=none",
        &[Disk::Virtio(disk)],
        &[],
    );
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
    let mut vm = Vm::boot("no-medium", &env.kernel, &initramfs, "panic=1", &[], &[]);
    vm.expect("ERROR: ");
    vm.expect("no boot medium found");
    vm.expect("boot timeline");
    vm.expect("media discovery");
    vm.expect("rebooting in 1 s (panic=1)");
    vm.wait_poweroff();
    vm.refute("Kernel panic");
}

/// With the `rescue` feature (busybox as /bin/sh) the same failure opens a shell on the console;
/// leaving it retries the boot.
#[test]
fn no_medium_with_rescue_shell() {
    let env = Env::get();
    let mut r = InitramfsRecipe::standard();
    r.features.push_str(" rescue");
    let initramfs = env.initramfs(&r);
    let mut vm = Vm::boot("no-medium-rescue", &env.kernel, &initramfs, "", &[], &[]);
    vm.expect("no boot medium found");
    vm.expect("emergency recovery shell");
    std::thread::sleep(std::time::Duration::from_secs(1));
    vm.send("echo RESCUE-$((40+2))");
    vm.expect("RESCUE-42");
    vm.send("poweroff -f");
    vm.wait_poweroff();
    vm.refute("Kernel panic");
}
