//! The modloop (issue 11), end to end: a medium made by `mkimage --modloop-kver` with the host
//! kernel's modules (most of the tree excluded to keep it small), booted to OpenRC; modules load
//! from it (`modprobe`, busybox `ip` autoloading `wireguard`, an `e1000` NIC hot-plugged on the
//! qemu monitor whose driver the initramfs does not carry); a modloop with one flipped byte is
//! refused (the boot goes on, or stops with `modloop_verify=required`); a missing one still
//! boots.
use std::time::Duration;

use qemu_tests::{
    Disk, Env, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Opts, Overlay, Vm,
};

/// Subtrees left out of the test modloop: everything but what the scenarios load (netfilter,
/// 802.1Q, bridge, WireGuard and its crypto, e1000) and their dependencies.
const EXCLUDES: &[&str] = &[
    "kernel/sound/*",
    "kernel/fs/*",
    "kernel/drivers/gpu/*",
    "kernel/drivers/media/*",
    "kernel/drivers/scsi/*",
    "kernel/drivers/infiniband/*",
    "kernel/drivers/usb/*",
    "kernel/drivers/iio/*",
    "kernel/drivers/staging/*",
    "kernel/drivers/hwmon/*",
    "kernel/drivers/hid/*",
    "kernel/drivers/md/*",
    "kernel/drivers/platform/*",
    "kernel/drivers/input/*",
    "kernel/drivers/comedi/*",
    "kernel/drivers/mtd/*",
    "kernel/drivers/isdn/*",
    "kernel/drivers/target/*",
    "kernel/drivers/bluetooth/*",
    "kernel/drivers/net/wireless/*",
    "kernel/drivers/net/ethernet/[a-h]*",
    "kernel/drivers/net/ethernet/[j-z]*",
    "kernel/drivers/net/ethernet/intel/[a-d]*",
    "kernel/drivers/net/ethernet/intel/[f-z]*",
    "kernel/drivers/net/ethernet/intel/e1000e*",
    "kernel/net/wireless/*",
    "kernel/net/mac80211/*",
    "kernel/net/bluetooth/*",
    "kernel/net/sunrpc/*",
];

const SCRIPT: &str = r#"
echo "MODLOOP-MOUNTS:$(grep -c ' /.modloop squashfs ' /proc/mounts)"
echo "LIBMODULES:$(readlink /lib/modules)"
echo "SYSINIT:$(ls /etc/runlevels/sysinit | tr '\n' ' ')"
ip link add wg0 type wireguard && echo "IP-WG-OK:$(cat /sys/module/wireguard/initstate)"
for m in wireguard nf_tables 8021q bridge; do
    if modprobe $m; then echo "MODPROBE-OK:$m"; else echo "MODPROBE-FAIL:$m"; fi
done
echo READY-FOR-NIC
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
echo "NIC:$(basename "$(readlink /sys/class/net/eth0/device/driver)")"
echo QEMUTEST-DONE
poweroff -f
"#;

fn medium() -> std::path::PathBuf {
    let env = Env::get();
    let ovl = Overlay::new()
        .file("etc/hostname", "qemutest\n")
        .world(&["alpine-base"])
        .scenario(SCRIPT)
        .tar_gz();
    let sig = env.sign_overlay(&ovl, "qemutest.apkovl.tar.gz");
    let mut extra = vec![
        "--modloop-kver".to_string(),
        env.kver.clone(),
        "--modloop-comp".into(),
        "zstd".into(),
    ];
    for e in EXCLUDES {
        extra.push("--modloop-exclude".into());
        extra.push(e.to_string());
    }
    env.medium_with(
        &MediumRecipe {
            format: MediumFormat::Vfat,
            world: vec!["alpine-base".into()],
            project_repo: false,
            world_extra: vec![],
            label: "ALPINE".into(),
            cmdline: String::new(),
            initramfs: env.initramfs(&InitramfsRecipe::standard()),
            overlay: Some(("qemutest.apkovl.tar.gz".into(), ovl, Some(sig))),
        },
        &extra,
    )
}

fn modloop_name() -> String {
    let kver = &Env::get().kver;
    format!("modloop-{}", kver.rsplit('-').next().unwrap_or(kver))
}

fn boot(name: &str, disk: &std::path::Path, cmdline: &str) -> Vm {
    let env = Env::get();
    let initramfs = env.initramfs(&InitramfsRecipe::standard());
    let image = Image::kernel(&env.kernel, &initramfs)
        .cmdline(cmdline)
        .disk(Disk::virtio(disk));
    Vm::boot(&image, Opts::named(name))
}

/// Found without `modloop=` (Alpine's search of `/boot/`), verified, mounted once (OpenRC's own
/// service is out of sysinit); modprobe, `ip link add ... type wireguard` and a hot-plugged
/// e1000 load their modules from it.
#[test]
fn modules_load_from_the_verified_modloop() {
    let env = Env::get();
    let disk = env.copy_medium(&medium(), "modloop-ok");
    let mut vm = boot("modloop-ok", &disk, "");
    vm.expect(&format!("modloop: {} ", modloop_name()));
    vm.expect("verified by medium-test.pub");
    vm.expect("MODLOOP-MOUNTS:1");
    vm.expect("LIBMODULES:/.modloop/modules");
    vm.expect("SYSINIT:devfs dmesg hwdrivers mdev ");
    vm.expect("IP-WG-OK:live");
    for m in ["wireguard", "nf_tables", "8021q", "bridge"] {
        vm.expect(&format!("MODPROBE-OK:{m}"));
    }
    vm.expect("READY-FOR-NIC");
    vm.monitor("device_add e1000,id=hotnic");
    vm.expect_within("NIC:e1000", Duration::from_secs(150));
    vm.expect("QEMUTEST-DONE");
    let tl = vm.timeline().unwrap_or_default();
    assert!(tl.contains("modloop"), "timeline:\n{tl}");
    vm.wait_poweroff();
}

/// One flipped byte: refused before mounting, the console says why and the boot goes on
/// without it; with `modloop_verify=required` the boot stops.
#[test]
fn a_tampered_modloop_is_refused() {
    let env = Env::get();
    let disk = env.copy_medium(&medium(), "modloop-tampered");
    let path = format!("boot/{}", modloop_name());
    let mut bytes = qemu_tests::vfat::read(&disk, &path);
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    qemu_tests::vfat::write(&disk, &path, &bytes);
    let cmdline = format!("modloop=/{path}");
    let mut vm = boot("modloop-tampered", &disk, &cmdline);
    vm.expect("the contents do not match the signed SHA-256 (modified or corrupted); not mounted");
    vm.expect("MODLOOP-MOUNTS:0");
    vm.expect("MODPROBE-FAIL:wireguard");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();

    let mut vm = boot(
        "modloop-required",
        &disk,
        &format!("{cmdline} modloop_verify=required panic=-1"),
    );
    vm.expect("ERROR: modloop: ");
    vm.expect("(modloop_verify=required)");
    vm.refute("QEMUTEST-DONE");
}

/// A `modloop=` naming a file that is not there: a warning, and the boot completes.
#[test]
fn a_missing_modloop_still_boots() {
    let env = Env::get();
    let disk = env.copy_medium(&medium(), "modloop-missing");
    let mut vm = boot("modloop-missing", &disk, "modloop=/boot/modloop-none-here");
    vm.expect("modloop=/boot/modloop-none-here: not found on the boot media; not mounted");
    vm.expect("MODLOOP-MOUNTS:0");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
}
