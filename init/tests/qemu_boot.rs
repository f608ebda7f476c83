//! qemu smoke tests: the static init as `/init` of a tiny initramfs built here with host `cpio`,
//! booted with the installed Debian kernel under TCG (KVM hangs on the project's machines).
//!
//! - `no_medium_reports_and_follows_panic`: no disk at all → the init prints its clear "no boot
//!   medium found" error and the timeline, then (no `/bin/sh`) follows `panic=1`: reboot after 1 s,
//!   which makes qemu exit because of `-no-reboot`.
//! - `finds_vfat_medium_with_an_empty_repository`: a virtio disk holding a vfat boot medium
//!   → drivers from coldplug/hotplug, superblock probe, NLS + vfat loaded, mounted, repository
//!   found, tmpfs root, medium relocated to `/media/usb`; the embedded apk finds no index there, so
//!   the install fails with apk's report, and the boot reboots per `panic=1`.
//!
//! The wait is bounded (180 s); qemu is killed afterwards and the serial log printed on failure.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use init::modules::ModuleDb;

const TIMEOUT: Duration = Duration::from_secs(180);

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The installed Debian kernel: `/boot/vmlinuz-<kver>` with `/lib/modules/<kver>`.
fn kernel() -> (PathBuf, String) {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/boot").expect("/boot").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(kver) = name.strip_prefix("vmlinuz-") {
            if Path::new("/lib/modules")
                .join(kver)
                .join("modules.dep")
                .exists()
            {
                found.push((e.path(), kver.to_string()));
            }
        }
    }
    found.sort();
    found
        .pop()
        .expect("a /boot/vmlinuz-<kver> with /lib/modules/<kver>/modules.dep (linux-image-amd64)")
}

/// A static binary has no ELF interpreter (PT_INTERP); a dynamic one cannot run in the initramfs.
fn assert_static(bin: &Path) {
    let data = std::fs::read(bin).unwrap();
    assert_eq!(&data[..4], b"\x7fELF");
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap()) as usize;
    let phentsize = u16::from_le_bytes([data[0x36], data[0x37]]) as usize;
    let phnum = u16::from_le_bytes([data[0x38], data[0x39]]) as usize;
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(data[off..off + 4].try_into().unwrap());
        assert_ne!(
            p_type,
            3,
            "{} is dynamically linked: build the tests with RUSTFLAGS=\"-C target-feature=+crt-static\" --target x86_64-unknown-linux-gnu (make test does)",
            bin.display()
        );
    }
}

/// Stages an initramfs tree and packs it with `cpio -o -H newc`.
struct Initramfs {
    dir: tempfile::TempDir,
    kver: String,
}

impl Initramfs {
    fn new(kver: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in [
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "dev",
            "proc",
            "sys",
            "run",
            "etc/apk/keys",
            "media",
            "sysroot",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
            std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        }
        // Rust's std aborts before main if fds 0-2 are closed and /dev/null is missing: the
        // kernel opens /dev/console for init only if the node exists in the cpio.
        run(Command::new("mknod")
            .args(["-m", "600"])
            .arg(root.join("dev/console"))
            .args(["c", "5", "1"]));
        run(Command::new("mknod")
            .args(["-m", "666"])
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"]));
        let init = PathBuf::from(env!("CARGO_BIN_EXE_init"));
        assert_static(&init);
        std::fs::copy(&init, root.join("init")).unwrap();
        Self {
            dir,
            kver: kver.to_string(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Copies the modules (with their modules.dep closure) and the metadata files.
    fn modules(self, names: &[&str]) -> Self {
        let host = Path::new("/lib/modules").join(&self.kver);
        let db = ModuleDb::load(&host).unwrap();
        let dest = self.root().join("usr/lib/modules").join(&self.kver);
        std::fs::create_dir_all(&dest).unwrap();
        for meta in [
            "modules.dep",
            "modules.alias",
            "modules.softdep",
            "modules.builtin",
        ] {
            if host.join(meta).exists() {
                std::fs::copy(host.join(meta), dest.join(meta)).unwrap();
            }
        }
        for name in names {
            let order = db.load_order(name);
            assert!(
                !order.is_empty() || db.is_builtin(name),
                "{name}: not a module of {}",
                self.kver
            );
            for m in order {
                let src = db.path_of(&m).unwrap();
                let rel = src.strip_prefix(&host).unwrap();
                std::fs::create_dir_all(dest.join(rel).parent().unwrap()).unwrap();
                std::fs::copy(&src, dest.join(rel)).unwrap();
            }
        }
        self
    }

    fn pack(&self) -> PathBuf {
        let out = self.dir.path().join("initramfs.cpio");
        run(Command::new("sh").arg("-c").arg(format!(
            "cd '{}' && find . | LC_ALL=C sort | cpio -o -H newc --quiet > '{}'",
            self.root().display(),
            out.display()
        )));
        out
    }
}

/// A running qemu with its serial console collected in the background.
struct Vm {
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    cursor: usize,
    deadline: Instant,
}

impl Vm {
    fn boot(kernel: &Path, initrd: &Path, append: &str, extra: &[&str]) -> Self {
        let mut child = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "tcg",
                "-m",
                "512",
                "-nographic",
                "-no-reboot",
                "-kernel",
            ])
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", append])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Self {
            child,
            log,
            cursor: 0,
            deadline: Instant::now() + TIMEOUT,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        let log = self.text();
        let name = std::thread::current()
            .name()
            .unwrap_or("qemu")
            .replace("::", "-");
        let full = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.serial.log"));
        let _ = std::fs::write(&full, &log);
        let tail: String = log
            .chars()
            .rev()
            .take(12000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!(
            "{why}\nfull serial log: {}\n----- serial console (tail) -----\n{tail}\n---------------------------------",
            full.display()
        );
    }

    /// Waits for `marker` after the previous one (bounded by the test deadline).
    fn expect(&mut self, marker: &str) {
        loop {
            let log = self.text();
            if let Some(i) = log.get(self.cursor..).and_then(|rest| rest.find(marker)) {
                self.cursor += i + marker.len();
                return;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited {
                // One last look: the reader threads may still be draining.
                std::thread::sleep(Duration::from_millis(300));
                if self
                    .text()
                    .get(self.cursor..)
                    .is_some_and(|r| r.contains(marker))
                {
                    continue;
                }
                self.fail(&format!("qemu exited before {marker:?} appeared"));
            }
            if Instant::now() > self.deadline {
                self.fail(&format!(
                    "{marker:?} did not appear within {} s; qemu killed",
                    TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `line` on the serial console.
    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("qemu stdin");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for qemu to exit by itself (reboot with -no-reboot, or power-off).
    fn wait_exit(&mut self) {
        while Instant::now() < self.deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.fail("qemu did not exit within the time limit and was killed");
    }

    fn show_log_if_asked(&self) {
        if std::env::var_os("INIT_QEMU_SHOW_LOG").is_some() {
            eprintln!(
                "----- serial console -----\n{}\n--------------------------",
                self.text()
            );
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.show_log_if_asked();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test-double init built from `examples/qemu_doubles.rs` (cargo test builds examples).
fn doubles_init() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/qemu_doubles");
    assert!(
        path.exists(),
        "{} is missing: run the whole suite (cargo test -p init builds the examples)",
        path.display()
    );
    path
}

#[test]
fn no_medium_reports_and_follows_panic() {
    let (kernel, kver) = kernel();
    let initramfs = Initramfs::new(&kver).modules(&["virtio_blk", "virtio_pci"]);
    let image = initramfs.pack();
    let mut vm = Vm::boot(&kernel, &image, "console=ttyS0 panic=1", &[]);
    for marker in [
        "Alpine-compatible init",
        "Mounting boot media",
        "ERROR: media discovery: no boot medium found",
        "boot timeline (CLOCK_BOOTTIME):",
        "media discovery",
        "(failed)",
        "kernel start -> now",
        "boot failed: rebooting in 1 s (panic=1)",
    ] {
        vm.expect(marker);
    }
    vm.wait_exit();
}

#[test]
fn finds_vfat_medium_with_an_empty_repository() {
    let (kernel, kver) = kernel();
    let initramfs = Initramfs::new(&kver).modules(&[
        "virtio_blk",
        "virtio_pci",
        "vfat",
        "nls_cp437",
        "nls_ascii",
    ]);
    let image = initramfs.pack();

    // The boot medium: vfat, label ALPINE, with a boot repository and a cache (mtools, no root).
    let disk = initramfs.dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "16", "-n", "ALPINE", "-i", "c0ffee01"])
        .arg(&disk));
    let marker = initramfs.dir.path().join("marker");
    std::fs::write(&marker, b"").unwrap();
    run(Command::new("mmd")
        .arg("-i")
        .arg(&disk)
        .args(["::/apks", "::/apks/x86_64", "::/cache"]));
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&disk)
        .arg(&marker)
        .arg("::/apks/.boot_repository"));

    let drive = format!("file={},format=raw,if=virtio", disk.display());
    let mut vm = Vm::boot(
        &kernel,
        &image,
        "console=ttyS0 panic=1 pkgs=chrony",
        &["-drive", &drive],
    );
    for marker in [
        "Mounting boot media",
        "vda: vfat LABEL=ALPINE UUID=C0FF-EE01 at /media/vda: boot repository apks/, cache/",
        "no apkovl found: default configuration",
        "boot repository /media/usb/apks",
        "Installing packages to root filesystem",
        "WARNING: opening /media/usb/apks/x86_64/APKINDEX.tar.gz: No such file or directory",
        "ERROR: unable to select packages:",
        "chrony (no such package):",
        "ERROR: packages: install chrony alpine-base: 1 error while installing",
        "boot timeline (CLOCK_BOOTTIME):",
        "packages",
        "(failed)",
        "boot failed: rebooting in 1 s (panic=1)",
    ] {
        vm.expect(marker);
    }
    vm.wait_exit();
}

#[test]
fn rescue_shell_then_retry() {
    let (kernel, kver) = kernel();
    let initramfs = Initramfs::new(&kver).modules(&["virtio_blk", "virtio_pci"]);
    // The `rescue` feature ships busybox as /bin/sh.
    let bin = initramfs.root().join("usr/bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    let image = initramfs.pack();
    // No panic=: a failure opens the shell; exiting it retries the boot.
    let mut vm = Vm::boot(&kernel, &image, "console=ttyS0", &[]);
    vm.expect("ERROR: media discovery: no boot medium found");
    vm.expect("Launching initramfs emergency recovery shell.");
    vm.expect("Type 'exit' to retry the boot.");
    std::thread::sleep(Duration::from_millis(500));
    vm.send("echo shell-says-$((6*7))\n");
    vm.expect("shell-says-42");
    vm.send("exit\n");
    vm.expect("retrying the boot (attempt 2)");
    vm.expect("ERROR: media discovery: no boot medium found");
    vm.expect("rescue shell");
    vm.expect("Type 'exit' to retry the boot.");
    std::thread::sleep(Duration::from_millis(500));
    vm.send("/bin/busybox poweroff -f\n");
    vm.wait_exit();
}

/// The /sbin/init of the fake new root: reports what the initramfs init left and powers off.
const NEWROOT_INIT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
$B echo "NEWROOT-INIT pid=$$ args=$*"
$B cat /var/log/boot-timeline.txt
$B echo "--- fstab"; $B cat /etc/fstab
$B echo "--- repositories"; $B cat /etc/apk/repositories
$B echo "--- world"; $B cat /etc/apk/world
$B echo "--- hostname $($B cat /etc/hostname)"
$B echo "--- boot runlevel $($B ls /etc/runlevels/boot | $B tr '\n' ' ')"
$B echo "--- default runlevel $($B ls /etc/runlevels/default | $B tr '\n' ' ')"
$B echo "--- sshd link $($B readlink /etc/runlevels/default/sshd)"
$B echo "--- marker $([ -e /etc/.default_boot_services ] && echo present || echo gone)"
$B echo "--- motd $([ -e /etc/motd ] && echo present || echo gone)"
$B echo "--- inittab"; $B tail -n 2 /etc/inittab
$B echo "--- securetty $($B cat /etc/securetty | $B tr '\n' ' ')"
$B echo "--- ssh modes $($B stat -c %a /root/.ssh /root/.ssh/authorized_keys 2>/dev/null | $B tr '\n' ' ')"
$B echo "--- key $($B cat /root/.ssh/authorized_keys 2>/dev/null)"
$B echo "--- media $($B ls /media | $B tr '\n' ' ')"
$B echo "--- medium $($B ls /media/*/apks | $B tr '\n' ' ')"
$B echo "--- mounts"; $B cut -d' ' -f2,3,4 /proc/mounts
$B echo NEWROOT-DONE
$B poweroff -f
"#;

/// An initramfs with the test-double init and the ext4 drivers.
fn doubles_initramfs() -> (PathBuf, Initramfs) {
    let (kernel, kver) = kernel();
    let initramfs = Initramfs::new(&kver).modules(&["virtio_blk", "virtio_pci", "ext4"]);
    std::fs::copy(doubles_init(), initramfs.root().join("init")).unwrap();
    assert_static(&initramfs.root().join("init"));
    (kernel, initramfs)
}

/// An ext4 medium (mkfs.ext4 -d, no root needed) labelled BOOTDATA whose boot repository carries
/// the tree the copy installer puts in the new root (busybox, [`NEWROOT_INIT`], inittab,
/// securetty, fstab, motd), plus `top` files at the medium's top level (overlays, signatures).
fn ext4_medium(dir: &Path, top: &[(&str, &str)]) -> PathBuf {
    let medium = dir.join("medium");
    let fake = medium.join("apks/fake-root");
    for d in ["bin", "sbin", "etc", "media", "proc", "sys", "dev", "run"] {
        std::fs::create_dir_all(fake.join(d)).unwrap();
    }
    std::fs::write(medium.join("apks/.boot_repository"), b"").unwrap();
    std::fs::copy("/bin/busybox", fake.join("bin/busybox")).unwrap();
    std::fs::write(fake.join("sbin/init"), NEWROOT_INIT).unwrap();
    std::fs::set_permissions(
        fake.join("sbin/init"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for (path, content) in [
        (
            "etc/inittab",
            "::sysinit:/sbin/openrc sysinit\ntty1::respawn:/sbin/getty 38400 tty1\n",
        ),
        ("etc/securetty", "console\ntty1\n"),
        (
            "etc/fstab",
            "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n",
        ),
        ("etc/motd", "Welcome\n"),
    ] {
        std::fs::write(fake.join(path), content).unwrap();
    }
    for (name, content) in top {
        std::fs::write(medium.join(name), content).unwrap();
    }
    let disk = dir.join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    run(Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-L",
            "BOOTDATA",
            "-U",
            "0a1b2c3d-0000-4000-8000-123456789abc",
            "-d",
        ])
        .arg(&medium)
        .arg(&disk));
    disk
}

/// Checks the mounts the fake new root printed.
fn assert_new_root_mounts(vm: &Vm, medium_at: &str) {
    let log = vm.text();
    let mounts = &log[log.rfind("--- mounts").unwrap()..log.rfind("NEWROOT-DONE").unwrap()];
    let medium = format!("{medium_at} ext4 ro,");
    for m in [
        "/ tmpfs rw",
        &medium,
        "/proc proc rw",
        "/dev devtmpfs",
        "/run tmpfs",
    ] {
        assert!(
            mounts.contains(m),
            "{m:?} not in the new root's mounts:\n{mounts}"
        );
    }
}

#[test]
fn full_boot_through_switch_root_with_a_copy_installer() {
    let (kernel, initramfs) = doubles_initramfs();
    let image = initramfs.pack();
    let disk = ext4_medium(initramfs.dir.path(), &[]);
    let drive = format!("file={},format=raw,if=virtio", disk.display());
    let append = "console=ttyS0 panic=1 hostname=fw1 pkgs=chrony,bad$token init_args=\"one two\" \
                  ssh_key=\"ssh-ed25519 AAAAC3NzaTEST test@qemu\"";
    let mut vm = Vm::boot(&kernel, &image, append, &["-drive", &drive]);
    for marker in [
        "vda: ext4 LABEL=BOOTDATA UUID=0a1b2c3d-0000-4000-8000-123456789abc at /media/vda: boot repository apks/",
        "no apkovl found: default configuration",
        "boot repository /media/vda/apks",
        "pkgs=: 'bad$token' is not a valid world dependency",
        "Installing packages to root filesystem",
        "(1/1) Installing fake-root",
        "for: chrony openssh alpine-base",
        "WARNING: copy installer: test double, not apk",
        "boot timeline (CLOCK_BOOTTIME):",
        "switch_root",
        "exec /sbin/init",
        "packages installed: 1",
        "NEWROOT-INIT pid=1 args=one two",
        // The timeline kept in the new root.
        "boot timeline (CLOCK_BOOTTIME):",
        "switch_root",
        "--- fstab",
        "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0",
        "LABEL=BOOTDATA /media/vda ext4 noauto,ro 0 0",
        "--- repositories",
        "/media/vda/apks",
        "--- world",
        "chrony\r\nopenssh\r\nalpine-base",
        "--- hostname fw1",
        "--- boot runlevel bootmisc hostname hwclock modules sysctl syslog",
        "--- default runlevel firstboot sshd",
        "--- sshd link /etc/init.d/sshd",
        "--- marker gone",
        "--- motd present",
        "--- inittab",
        "# enable login on alternative console",
        "ttyS0::respawn:/sbin/getty -L 0 ttyS0 vt100",
        "--- securetty console tty1 ttyS0",
        "--- ssh modes 700 600",
        "--- key ssh-ed25519 AAAAC3NzaTEST test@qemu",
        "--- media vda",
        "--- medium fake-root",
        "--- mounts",
        "NEWROOT-DONE",
    ] {
        vm.expect(marker);
    }
    assert_new_root_mounts(&vm, "/media/vda");
    vm.wait_exit();
}

/// The overlay as the manifest test double reads it: hostname, world, the default-services
/// marker, an fstab naming the medium's mount point, and a deletion.
const OVERLAY: &str = "etc/hostname=ovlhost\\n\n\
                       etc/apk/world=htop\\n\n\
                       etc/.default_boot_services=\n\
                       etc/fstab=LABEL=BOOTDATA /media/boot ext4 noauto,ro 0 0\\n\n\
                       -etc/motd\n";

#[test]
fn overlay_is_applied_and_its_choices_win() {
    let (kernel, initramfs) = doubles_initramfs();
    let image = initramfs.pack();
    let disk = ext4_medium(initramfs.dir.path(), &[("fw.apkovl.tar.gz", OVERLAY)]);
    let drive = format!("file={},format=raw,if=virtio", disk.display());
    let append = "console=ttyS0 panic=1 hostname=fw1 apkovl_verify=optional";
    let mut vm = Vm::boot(&kernel, &image, append, &["-drive", &drive]);
    for marker in [
        "at /media/vda: boot repository apks/, apkovl fw.apkovl.tar.gz",
        "Loading user settings from /media/vda/fw.apkovl.tar.gz (apkovl_verify=optional)",
        "WARNING: /media/vda/fw.apkovl.tar.gz: apkovl is not signed (apkovl_verify=optional)",
        "WARNING: /media/vda/fw.apkovl.tar.gz: manifest applier: test double",
        // The overlay's fstab names the medium: it moves to /media/boot.
        "boot repository /media/boot/apks",
        "for: htop alpine-base",
        "NEWROOT-INIT pid=1",
        "LABEL=BOOTDATA /media/boot ext4 noauto,ro 0 0",
        "--- world",
        "htop\r\nalpine-base",
        // hostname= does not override the overlay's /etc/hostname.
        "--- hostname ovlhost",
        "--- default runlevel firstboot",
        "--- marker gone",
        // The deletion manifest removed a file a package installed.
        "--- motd gone",
        "--- media boot",
        "NEWROOT-DONE",
    ] {
        vm.expect(marker);
    }
    assert_new_root_mounts(&vm, "/media/boot");
    vm.wait_exit();
}

#[test]
fn bad_overlay_signature_stops_the_boot() {
    let (kernel, initramfs) = doubles_initramfs();
    let image = initramfs.pack();
    let disk = ext4_medium(
        initramfs.dir.path(),
        &[
            ("fw.apkovl.tar.gz", OVERLAY),
            ("fw.apkovl.tar.gz.sig", "evil\n"),
        ],
    );
    let drive = format!("file={},format=raw,if=virtio", disk.display());
    // Even with verification off, a signature that is present and bad is refused.
    let append = "console=ttyS0 panic=1 apkovl_verify=off";
    let mut vm = Vm::boot(&kernel, &image, append, &["-drive", &drive]);
    for marker in [
        "Loading user settings from /media/vda/fw.apkovl.tar.gz (apkovl_verify=off)",
        "ERROR: overlay: /media/vda/fw.apkovl.tar.gz: signature check failed: bad signature: test signature says \"evil\"",
        "overlay",
        "(failed)",
        "boot failed: rebooting in 1 s (panic=1)",
    ] {
        vm.expect(marker);
    }
    vm.wait_exit();
    assert!(!vm.text().contains("NEWROOT-INIT"));
}
