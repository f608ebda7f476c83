//! The modloop (issue 11), end to end: a medium made by `mkimage --modloop-kver` with the host
//! kernel's modules (most of the tree excluded to keep it small), booted to OpenRC with an
//! initramfs that carries no network driver; modules load from the modloop (`modprobe`, busybox
//! `ip` autoloading `wireguard`, an `e1000` NIC hot-plugged on the qemu monitor); the timeline
//! shows the phase with its size and verification; a modloop with one flipped byte is refused
//! (the boot goes on, or stops with `modloop_verify=required`); a missing one still boots; one
//! built for another kernel is a clear warning. One short boot per test.
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_tests::{
    Disk, Env, Image, InitramfsRecipe, MediumFormat, MediumRecipe, Opts, Overlay, UkiRecipe, Vm,
};

/// The kernel version of the mismatch scenario's modloop (not the running kernel's).
const OTHER_KVER: &str = "6.1.0-0-other";

/// Runs in the booted system. The hot-plug wait only where the command line asks for it
/// (`qemutest_hotplug=1`), so the other scenarios end at once.
const SCRIPT: &str = r#"
echo "MODLOOP-MOUNTS:$(grep -c ' /.modloop squashfs ' /proc/mounts)"
echo "LIBMODULES:$(readlink /lib/modules)"
echo "SYSINIT:$(ls /etc/runlevels/sysinit | tr '\n' ' ')"
ip link add wg0 type wireguard && echo "IP-WG-OK:$(cat /sys/module/wireguard/initstate)"
for m in wireguard nf_tables 8021q bridge; do
    if modprobe $m; then echo "MODPROBE-OK:$m"; else echo "MODPROBE-FAIL:$m"; fi
done
if grep -qw qemutest_hotplug=1 /proc/cmdline; then
    echo "E1000-BEFORE:$(ls -d /sys/module/e1000 2>/dev/null | wc -l)"
    # Debian's kernel has no uevent helper (CONFIG_UEVENT_HELPER), where Alpine's mdev service
    # registers busybox mdev: here mdev takes the uevents from netlink instead (its -d mode),
    # with the same /etc/mdev.conf ($MODALIAS -> modprobe).
    [ -e /proc/sys/kernel/hotplug ] || mdev -d
    echo READY-FOR-NIC
    i=0
    while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
    echo "NIC:$(basename "$(readlink /sys/class/net/eth0/device/driver)")"
fi
echo QEMUTEST-DONE
poweroff -f
"#;

/// The initramfs of these scenarios: the standard features without `network`, so the e1000
/// driver exists only in the modloop.
fn initramfs() -> PathBuf {
    Env::get().initramfs(&InitramfsRecipe {
        features: "base virtio ata scsi nvme usb mmc cdrom ext4 vfat squashfs".into(),
        ..InitramfsRecipe::standard()
    })
}

/// A vfat medium with alpine-base, the scenario and a modloop made by `mkimage` with `extra`.
fn medium_with(extra: &[String]) -> PathBuf {
    let env = Env::get();
    let ovl = Overlay::new()
        .file("etc/hostname", "qemutest\n")
        .world(&["alpine-base"])
        .scenario(SCRIPT)
        .tar_gz();
    let sig = env.sign_overlay(&ovl, "qemutest.apkovl.tar.gz");
    env.medium_with(
        &MediumRecipe {
            uki: UkiRecipe::None,
            format: MediumFormat::Vfat,
            world: vec!["alpine-base".into()],
            project_repo: false,
            world_extra: vec![],
            label: "ALPINE".into(),
            cmdline: String::new(),
            initramfs: initramfs(),
            overlay: Some(("qemutest.apkovl.tar.gz".into(), ovl, Some(sig))),
        },
        extra,
    )
}

/// The medium with the running kernel's modloop (zstd, most of the tree excluded).
fn medium() -> PathBuf {
    let env = Env::get();
    let mut extra = vec![
        "--modloop-kver".to_string(),
        env.kver.clone(),
        "--modloop-comp".into(),
        "zstd".into(),
    ];
    for e in qemu_tests::assets::TEST_MODLOOP_EXCLUDES {
        extra.push("--modloop-exclude".into());
        extra.push(e.to_string());
    }
    medium_with(&extra)
}

fn modloop_name() -> String {
    let kver = &Env::get().kver;
    format!("modloop-{}", kver.rsplit('-').next().unwrap_or(kver))
}

fn boot(name: &str, disk: &Path, cmdline: &str) -> Vm {
    let image = Image::kernel(&Env::get().kernel, initramfs())
        .cmdline(cmdline)
        .disk(Disk::virtio(disk));
    let opts = Opts {
        monitor: true,
        ..Opts::named(name)
    };
    Vm::boot(&image, opts)
}

/// The note of the timeline's `modloop` row.
fn modloop_row(vm: &mut Vm) -> String {
    let tl = vm.timeline().unwrap_or_default();
    match tl.lines().find(|l| l.trim_start().starts_with("modloop ")) {
        Some(row) => row.to_string(),
        None => vm.fail(&format!("no modloop phase in the boot timeline:\n{tl}")),
    }
}

/// `NAME <size> <unit>, ...` in a timeline note: the size as a number with a byte unit.
fn has_size_after(row: &str, name: &str) -> bool {
    let Some((_, rest)) = row.split_once(&format!("{name} ")) else {
        return false;
    };
    let mut words = rest.split_whitespace();
    let number = words.next().and_then(|n| n.parse::<f64>().ok());
    let unit = words.next().map(|u| u.trim_end_matches(','));
    number.is_some_and(|n| n > 0.0) && matches!(unit, Some("B" | "KiB" | "MiB" | "GiB"))
}

/// Found without `modloop=` (Alpine's search of `/boot/`), verified, mounted once (OpenRC's own
/// service is out of sysinit); modprobe, `ip link add ... type wireguard` and a hot-plugged
/// e1000 (whose driver the initramfs does not carry) load their modules from it; the timeline
/// shows the phase with the size and the key that verified it.
#[test]
fn modules_load_from_the_verified_modloop() {
    let env = Env::get();
    let disk = env.copy_medium(&medium(), "modloop-ok");
    let mut vm = boot("modloop-ok", &disk, "qemutest_hotplug=1");
    vm.expect(&format!("modloop: {} ", modloop_name()));
    vm.expect("verified by medium-test.pub");
    vm.expect("MODLOOP-MOUNTS:1");
    vm.expect("LIBMODULES:/.modloop/modules");
    vm.expect("SYSINIT:devfs dmesg hwdrivers mdev ");
    vm.expect("IP-WG-OK:live");
    for m in ["wireguard", "nf_tables", "8021q", "bridge"] {
        vm.expect(&format!("MODPROBE-OK:{m}"));
    }
    vm.expect("E1000-BEFORE:0");
    vm.expect("READY-FOR-NIC");
    vm.monitor("device_add e1000,id=hotnic");
    vm.expect_within("NIC:e1000", Duration::from_secs(150));
    vm.expect("QEMUTEST-DONE");
    let row = modloop_row(&mut vm);
    let verified = format!("verified by medium-test.pub, kernel {}", env.kver);
    if !has_size_after(&row, &modloop_name()) || !row.contains(&verified) {
        vm.fail(&format!(
            "the timeline's modloop row lacks the name, size or {verified:?}: {row}"
        ));
    }
    vm.wait_poweroff();
}

/// One flipped byte: refused before mounting, the console and the timeline say why and the
/// boot goes on without it.
#[test]
fn a_tampered_modloop_is_refused() {
    let disk = tampered("modloop-tampered");
    let mut vm = boot(
        "modloop-tampered",
        &disk,
        &format!("modloop=/boot/{}", modloop_name()),
    );
    vm.expect("the contents do not match the signed SHA-256 (modified or corrupted); not mounted");
    vm.expect("MODLOOP-MOUNTS:0");
    vm.expect("MODPROBE-FAIL:wireguard");
    vm.expect("QEMUTEST-DONE");
    let row = modloop_row(&mut vm);
    if !row.contains("refused: ") || !row.contains("do not match the signed SHA-256") {
        vm.fail(&format!(
            "the timeline's modloop row does not say why: {row}"
        ));
    }
    vm.wait_poweroff();
}

/// The same flipped byte under `modloop_verify=required`: the boot stops.
#[test]
fn a_tampered_modloop_stops_a_boot_that_requires_it() {
    let disk = tampered("modloop-required");
    let mut vm = boot(
        "modloop-required",
        &disk,
        &format!(
            "modloop=/boot/{} modloop_verify=required panic=-1",
            modloop_name()
        ),
    );
    vm.expect("ERROR: modloop: ");
    vm.expect("do not match the signed SHA-256");
    vm.expect("(modloop_verify=required)");
    vm.wait_poweroff();
    vm.refute("QEMUTEST-DONE");
    vm.refute("MODLOOP-MOUNTS");
}

/// A private copy of the medium whose modloop has one byte flipped in the middle.
fn tampered(name: &str) -> PathBuf {
    let disk = Env::get().copy_medium(&medium(), name);
    let path = format!("boot/{}", modloop_name());
    qemu_tests::vfat::edit(&disk, &path, |bytes| {
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
    });
    disk
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

/// A modloop signed for another kernel version (found in `/boot/` without `modloop=`): it
/// verifies and is mounted, and the console warns that its modules are not the running
/// kernel's.
#[test]
fn a_modloop_for_another_kernel_is_a_clear_warning() {
    let env = Env::get();
    let basedir = other_kernel_tree();
    let extra = [
        "--modloop-kver".to_string(),
        OTHER_KVER.into(),
        "--modloop-basedir".into(),
        basedir.display().to_string(),
        "--modloop-comp".into(),
        "zstd".into(),
    ];
    let disk = env.copy_medium(&medium_with(&extra), "modloop-other-kernel");
    let mut vm = boot("modloop-other-kernel", &disk, "");
    vm.expect("modloop: modloop-other ");
    vm.expect(&format!(
        "modloop: the modloop holds modules for kernel {OTHER_KVER}, the running kernel is {}",
        env.kver
    ));
    vm.expect("MODLOOP-MOUNTS:1");
    vm.expect("MODPROBE-FAIL:8021q");
    vm.expect("QEMUTEST-DONE");
    vm.wait_poweroff();
}

/// `BASEDIR/lib/modules/6.1.0-0-other` with one real module (8021q) and its `modules.dep`,
/// written once into the asset directory (same bytes every time, so the medium stays cached).
fn other_kernel_tree() -> PathBuf {
    let env = Env::get();
    let base = env.assets.join("modloop-other-kernel");
    let dir = base.join("lib/modules").join(OTHER_KVER);
    let module = "kernel/net/8021q/8021q.ko";
    if !dir.join("modules.dep").is_file() {
        let src = Path::new("/lib/modules").join(&env.kver).join(module);
        std::fs::create_dir_all(dir.join("kernel/net/8021q")).unwrap();
        std::fs::copy(&src, dir.join(module)).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        std::fs::write(dir.join("modules.dep"), format!("{module}:\n")).unwrap();
    }
    base
}
