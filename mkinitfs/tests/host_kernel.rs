//! Integration tests of the `mkinitfs` binary against the build host's Debian kernel
//! (`linux-image-amd64`, installed by `make deps`): module closure, host tool compatibility,
//! reproducibility, error lines, and a real boot under QEMU (TCG) with the `rescue` feature.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mkinitfs");

/// The installed kernel: a `/lib/modules/<kver>` with `modules.dep` and a `/boot/vmlinuz-<kver>`.
fn kernel() -> String {
    let mut found: Vec<String> = fs::read_dir("/lib/modules")
        .expect("/lib/modules (install linux-image-amd64: make deps)")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|k| {
            Path::new("/lib/modules")
                .join(k)
                .join("modules.dep")
                .is_file()
        })
        .filter(|k| Path::new("/boot").join(format!("vmlinuz-{k}")).is_file())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no kernel with modules.dep and /boot/vmlinuz-<kver> (make deps)")
}

fn tiny_init(dir: &Path) -> PathBuf {
    let path = dir.join("init.sh");
    fs::write(
        &path,
        "#!/bin/sh\necho MKINITFS-QEMU-MARKER-OK\npoweroff -f\n",
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn mkinitfs(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run mkinitfs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mkinitfs failed: {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Parses the host's modules.dep: module name -> (path, deps).
fn host_deps(kver: &str) -> Vec<(String, Vec<String>)> {
    let text =
        fs::read_to_string(Path::new("/lib/modules").join(kver).join("modules.dep")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| {
            (
                m.to_string(),
                d.split_whitespace().map(str::to_string).collect(),
            )
        })
        .collect()
}

fn name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap();
    base.split(".ko").next().unwrap().replace('-', "_")
}

/// The module and every dependency per modules.dep, as paths.
fn dep_closure(deps: &[(String, Vec<String>)], name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let start = deps
        .iter()
        .find(|(m, _)| name_of(m) == name)
        .unwrap_or_else(|| panic!("{name} not a module"));
    let mut queue = vec![start.0.clone()];
    while let Some(m) = queue.pop() {
        if out.insert(m.clone()) {
            let (_, d) = deps.iter().find(|(p, _)| *p == m).unwrap();
            queue.extend(d.iter().cloned());
        }
    }
    out
}

#[test]
fn default_image_has_init_and_the_module_closures() {
    let tmp = tempfile::tempdir().unwrap();
    let kver = kernel();
    let init = tiny_init(tmp.path());
    let listing = ok(&mkinitfs(&["-i", init.to_str().unwrap(), "-l", &kver]));
    let lines: BTreeSet<&str> = listing.lines().collect();
    let mut sorted: Vec<&str> = listing.lines().collect();
    sorted.sort();
    assert_eq!(
        sorted,
        listing.lines().collect::<Vec<_>>(),
        "-l output is sorted"
    );
    for fixed in [
        "./init",
        "./dev/console",
        "./dev/null",
        "./etc/fstab",
        "./etc/passwd",
        "./etc/group",
        "./bin",
        "./lib",
        "./sbin",
        "./sysroot",
    ] {
        assert!(lines.contains(fixed), "{fixed} missing");
    }
    let deps = host_deps(&kver);
    for module in [
        "virtio_blk",
        "virtio_pci",
        "ext4",
        "vfat",
        "isofs",
        "squashfs",
        "nls_cp437",
        "nls_ascii",
        "sd_mod",
        "ahci",
        "nvme",
        "usb_storage",
        "xhci_pci",
    ] {
        for path in dep_closure(&deps, module) {
            let want = format!("./usr/lib/modules/{kver}/{path}");
            assert!(lines.contains(want.as_str()), "{module}: {want} missing");
        }
    }
    for meta in [
        "modules.dep",
        "modules.alias",
        "modules.softdep",
        "modules.builtin",
        "modules.order",
    ] {
        let want = format!("./usr/lib/modules/{kver}/{meta}");
        assert!(lines.contains(want.as_str()), "{want} missing");
    }
}

#[test]
fn host_cpio_accepts_the_image_and_builds_are_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let kver = kernel();
    let init = tiny_init(tmp.path());
    let a = tmp.path().join("a.img");
    let b = tmp.path().join("b.img");
    for out in [&a, &b] {
        ok(&mkinitfs(&[
            "-q",
            "-i",
            init.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            &kver,
        ]));
    }
    let (bytes_a, bytes_b) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
    assert!(bytes_a == bytes_b, "two builds differ");
    assert!(
        bytes_a.len() < 4 << 20,
        "default image is {} bytes, over 4 MiB",
        bytes_a.len()
    );
    assert_eq!(
        fs::metadata(&a).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // zstd -d | cpio -t with the host tools.
    let plain = Command::new("zstd")
        .args(["-d", "-c", a.to_str().unwrap()])
        .output()
        .expect("zstd (make deps)");
    assert!(
        plain.status.success(),
        "zstd -d failed: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let mut cpio = Command::new("cpio")
        .args(["-t", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cpio (make deps)");
    let mut stdin = cpio.stdin.take().unwrap();
    let data = plain.stdout.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let listed = cpio.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        listed.status.success(),
        "cpio -t failed: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let names: Vec<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|l| format!("./{l}"))
        .collect();
    let listing = ok(&mkinitfs(&["-i", init.to_str().unwrap(), "-l", &kver]));
    assert_eq!(
        names,
        listing.lines().map(str::to_string).collect::<Vec<_>>(),
        "cpio -t and -l disagree"
    );

    // Our own reader: uid/gid 0, mtime 0, devices as device nodes.
    let entries = mkinitfs::cpio::parse(&plain.stdout).unwrap();
    assert!(entries
        .iter()
        .all(|e| e.uid == 0 && e.gid == 0 && e.mtime == 0));
    let null = entries.iter().find(|e| e.name == "dev/null").unwrap();
    assert_eq!((null.mode, null.rdev), (0o020666, (1, 3)));
    let init_entry = entries.iter().find(|e| e.name == "init").unwrap();
    assert_eq!(init_entry.mode, 0o100755);
}

#[test]
fn source_date_epoch_sets_every_mtime_and_gzip_works() {
    let tmp = tempfile::tempdir().unwrap();
    let init = tiny_init(tmp.path());
    let out = tmp.path().join("g.img");
    let res = Command::new(BIN)
        .args([
            "-q",
            "-n",
            "-C",
            "gzip",
            "-i",
            init.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            &kernel(),
        ])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    ok(&res);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&fs::read(&out).unwrap()[..])
        .read_to_end(&mut plain)
        .unwrap();
    let entries = mkinitfs::cpio::parse(&plain).unwrap();
    assert!(entries.iter().all(|e| e.mtime == 1_700_000_000));
    // -n: no modules at all.
    assert!(!entries.iter().any(|e| e.name.contains(".ko")));
}

fn copy_metadata(kver: &str, base: &Path) -> PathBuf {
    let src = Path::new("/lib/modules").join(kver);
    let dst = base.join("lib/modules").join(kver);
    fs::create_dir_all(&dst).unwrap();
    for entry in fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("modules.") && entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), dst.join(&name)).unwrap();
        }
    }
    dst
}

fn error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "expected exit code 1");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("mkinitfs: WARNING"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    lines[0].to_string()
}

#[test]
fn corrupted_modules_dep_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let kver = kernel();
    let base = tmp.path().join("base");
    let kdir = copy_metadata(&kver, &base);
    let init = tiny_init(tmp.path());
    let dep = kdir.join("modules.dep");
    let mut text = fs::read_to_string(&dep).unwrap();
    text.insert_str(0, "kernel/fs/ext4/ext4.ko kernel/lib/crc16.ko\n");
    fs::write(&dep, text).unwrap();
    let out = mkinitfs(&[
        "-b",
        base.to_str().unwrap(),
        "-i",
        init.to_str().unwrap(),
        "-l",
        &kver,
    ]);
    assert_eq!(
        error_line(&out),
        format!(
            "mkinitfs: ERROR: {}: line 1: expected \"module.ko: dependencies\"",
            dep.display()
        )
    );

    // A dependency without its own line (truncated file).
    fs::write(&dep, "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko\n").unwrap();
    let out = mkinitfs(&[
        "-b",
        base.to_str().unwrap(),
        "-i",
        init.to_str().unwrap(),
        "-l",
        &kver,
    ]);
    assert_eq!(
        error_line(&out),
        format!(
            "mkinitfs: ERROR: {}: line 1: kernel/fs/ext4/ext4.ko: dependency kernel/lib/crc16.ko has no line of its own",
            dep.display()
        )
    );

    // Metadata fine but the module files are absent: a missing module.
    copy_metadata(&kver, &base);
    let out = mkinitfs(&[
        "-b",
        base.to_str().unwrap(),
        "-i",
        init.to_str().unwrap(),
        "-F",
        "ext4",
        "-l",
        &kver,
    ]);
    let line = error_line(&out);
    assert!(line.starts_with("mkinitfs: ERROR: kernel/"), "{line}");
    assert!(
        line.contains(": listed in modules.dep but ") && line.ends_with(" is missing"),
        "{line}"
    );
}

#[test]
fn unknown_feature_and_missing_kernel_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let init = tiny_init(tmp.path());
    let out = mkinitfs(&[
        "-i",
        init.to_str().unwrap(),
        "-F",
        "base nosuchfeature",
        "-l",
        &kernel(),
    ]);
    let line = error_line(&out);
    assert!(line.starts_with("mkinitfs: ERROR: nosuchfeature: unknown feature (no nosuchfeature.files or nosuchfeature.modules in "), "{line}");

    let out = mkinitfs(&["-i", init.to_str().unwrap(), "-l", "0.0.0-nosuchkernel"]);
    assert_eq!(
        error_line(&out),
        "mkinitfs: ERROR: /lib/modules/0.0.0-nosuchkernel: does not exist or is not a directory"
    );

    let out = mkinitfs(&["-i", "/nonexistent/init", "-n", "-l", "x"]);
    assert_eq!(
        error_line(&out),
        "mkinitfs: ERROR: /nonexistent/init: No such file or directory (os error 2)"
    );

    let out = mkinitfs(&["-i", init.to_str().unwrap(), "-C", "lz4", "-l", "x"]);
    assert_eq!(
        error_line(&out),
        "mkinitfs: ERROR: initfscomp: compression \"lz4\" not supported (gzip, zstd, none)"
    );

    let unreadable = tmp.path().join("fstab-dir");
    fs::create_dir(&unreadable).unwrap();
    let out = mkinitfs(&[
        "-i",
        init.to_str().unwrap(),
        "-f",
        unreadable.to_str().unwrap(),
        "-n",
        "-l",
        "x",
    ]);
    assert_eq!(
        error_line(&out),
        format!(
            "mkinitfs: ERROR: {}: fstab is not a regular file",
            unreadable.display()
        )
    );
}

#[test]
fn lists_features_and_honours_feature_dirs() {
    let listing = ok(&mkinitfs(&["-L"]));
    let names: Vec<&str> = listing.lines().collect();
    for want in [
        "ata", "base", "cdrom", "ext4", "kms", "mmc", "network", "nvme", "rescue", "scsi",
        "squashfs", "usb", "vfat", "virtio",
    ] {
        assert!(names.contains(&want), "{want} missing from -L: {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    // -P comes first: a feature there shadows the shipped one of the same name.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("ext4.modules"), "kernel/fs/isofs\n").unwrap();
    fs::write(tmp.path().join("mine.files"), "/usr/bin/ls\n").unwrap();
    let listing = ok(&mkinitfs(&["-L", "-P", tmp.path().to_str().unwrap()]));
    assert!(listing.lines().any(|l| l == "mine"));
    let init = tiny_init(tmp.path());
    let kver = kernel();
    let listing = ok(&mkinitfs(&[
        "-P",
        tmp.path().to_str().unwrap(),
        "-F",
        "ext4 mine",
        "-i",
        init.to_str().unwrap(),
        "-l",
        &kver,
    ]));
    assert!(listing
        .lines()
        .any(|l| l.ends_with("/isofs.ko") || l.contains("/isofs.ko.")));
    assert!(!listing.lines().any(|l| l.contains("/ext4.ko")));
    // ELF closure of /usr/bin/ls: interpreter and libc come along.
    assert!(listing.lines().any(|l| l == "./usr/bin/ls"), "{listing}");
    assert!(
        listing.lines().any(|l| l.ends_with("/libc.so.6")),
        "{listing}"
    );
    assert!(
        listing.lines().any(|l| l.contains("ld-linux-x86-64.so.2")),
        "{listing}"
    );
}

#[test]
fn keys_are_embedded_and_missing_index_keys_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let init = tiny_init(tmp.path());
    let keys = tmp.path().join("keys");
    let ovl = tmp.path().join("ovl");
    fs::create_dir_all(&keys).unwrap();
    fs::create_dir_all(&ovl).unwrap();
    fs::write(keys.join("build.rsa.pub"), "-----BEGIN PUBLIC KEY-----\n").unwrap();
    fs::write(ovl.join("admin.pub"), "ed25519").unwrap();
    let out = mkinitfs(&[
        "-n",
        "-i",
        init.to_str().unwrap(),
        "--keys-dir",
        keys.to_str().unwrap(),
        "--ovl-keys-dir",
        ovl.to_str().unwrap(),
        "-l",
        "x",
    ]);
    let listing = ok(&out);
    assert!(listing.lines().any(|l| l == "./etc/apk/keys/build.rsa.pub"));
    assert!(listing.lines().any(|l| l == "./etc/apkovl/keys/admin.pub"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("WARNING"));

    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let out = mkinitfs(&[
        "-n",
        "-i",
        init.to_str().unwrap(),
        "--keys-dir",
        empty.to_str().unwrap(),
        "-l",
        "x",
    ]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mkinitfs: WARNING: no package index keys embedded"),
        "{stderr}"
    );
}

#[test]
fn hard_links_in_the_base_stay_hard_links() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    fs::create_dir_all(base.join("usr/share/x")).unwrap();
    fs::write(base.join("usr/share/x/a"), "shared data").unwrap();
    fs::hard_link(base.join("usr/share/x/a"), base.join("usr/share/x/b")).unwrap();
    let feats = tmp.path().join("feat");
    fs::create_dir_all(&feats).unwrap();
    fs::write(feats.join("links.files"), "/usr/share/x\n").unwrap();
    let init = tiny_init(tmp.path());
    let out = tmp.path().join("img");
    ok(&mkinitfs(&[
        "-q",
        "-b",
        base.to_str().unwrap(),
        "-P",
        feats.to_str().unwrap(),
        "-F",
        "links",
        "-n",
        "-C",
        "none",
        "-i",
        init.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "x",
    ]));
    let entries = mkinitfs::cpio::parse(&fs::read(&out).unwrap()).unwrap();
    let a = entries.iter().find(|e| e.name == "usr/share/x/a").unwrap();
    let b = entries.iter().find(|e| e.name == "usr/share/x/b").unwrap();
    assert_eq!(a.ino, b.ino);
    assert_eq!((a.nlink, b.nlink), (2, 2));
    assert!(a.data.is_empty());
    assert_eq!(b.data, b"shared data");
}

/// Boots the host kernel with the image under QEMU/TCG: the kernel unpacks the archive, runs
/// `/init` (a shell script) through the rescue busybox, which prints the marker and powers off.
#[test]
fn kernel_boots_the_image_with_rescue_busybox() {
    let tmp = tempfile::tempdir().unwrap();
    let kver = kernel();
    let init = tiny_init(tmp.path());
    let img = tmp.path().join("initramfs");
    let features = "base virtio ata scsi nvme usb mmc cdrom ext4 vfat squashfs rescue";
    let out = mkinitfs(&[
        "-q",
        "-F",
        features,
        "-i",
        init.to_str().unwrap(),
        "-o",
        img.to_str().unwrap(),
        &kver,
    ]);
    ok(&out);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("rescue: no bin/busybox"),
        "busybox-static is needed for this test (make deps)"
    );
    // The workspace's one qemu harness: bounded waits, a failure shows the console's tail.
    let image =
        qemu_tests::Image::kernel(format!("/boot/vmlinuz-{kver}"), &img).cmdline("panic=-1");
    let mut vm = qemu_tests::Vm::boot(
        &image,
        qemu_tests::Opts {
            memory_mib: 512,
            ..qemu_tests::Opts::named("mkinitfs-rescue-busybox")
        },
    );
    vm.expect("MKINITFS-QEMU-MARKER-OK");
    // poweroff -f must have worked (an init that exits makes the kernel panic instead).
    vm.wait_poweroff();
    vm.refute("Attempted to kill init");
}

#[test]
fn keep_stages_the_tree_into_tempdir() {
    let tmp = tempfile::tempdir().unwrap();
    let init = tiny_init(tmp.path());
    let stage = tmp.path().join("stage");
    let out = tmp.path().join("img");
    let res = mkinitfs(&[
        "-q",
        "-k",
        "-t",
        stage.to_str().unwrap(),
        "-F",
        "ext4",
        "-i",
        init.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        &kernel(),
    ]);
    ok(&res);
    assert!(String::from_utf8_lossy(&res.stderr)
        .contains(&format!("staging directory kept: {}", stage.display())));
    assert_eq!(
        fs::read(stage.join("init")).unwrap(),
        fs::read(&init).unwrap()
    );
    assert_eq!(
        fs::read_link(stage.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    let dep =
        fs::read_to_string(stage.join("lib/modules").join(kernel()).join("modules.dep")).unwrap();
    assert!(
        dep.lines().any(|l| l.starts_with("kernel/fs/ext4/ext4.ko")),
        "{dep}"
    );
    assert!(out.is_file());
}

#[test]
fn config_and_features_come_from_the_base_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    fs::create_dir_all(base.join("etc/mkinitfs/features.d")).unwrap();
    fs::create_dir_all(base.join("opt")).unwrap();
    fs::write(base.join("opt/hello"), "hi").unwrap();
    fs::write(
        base.join("etc/mkinitfs/mkinitfs.conf"),
        "features=\"hello\"\ninitfscomp=\"none\"\n",
    )
    .unwrap();
    fs::write(
        base.join("etc/mkinitfs/features.d/hello.files"),
        "/opt/hello\n",
    )
    .unwrap();
    let init = tiny_init(tmp.path());
    let listing = ok(&mkinitfs(&[
        "-b",
        base.to_str().unwrap(),
        "-n",
        "-i",
        init.to_str().unwrap(),
        "-l",
        "x",
    ]));
    assert!(listing.lines().any(|l| l == "./opt/hello"), "{listing}");
    // The command line wins over the file.
    let out = mkinitfs(&[
        "-b",
        base.to_str().unwrap(),
        "-F",
        "nothere",
        "-n",
        "-i",
        init.to_str().unwrap(),
        "-l",
        "x",
    ]);
    assert!(error_line(&out).starts_with("mkinitfs: ERROR: nothere: unknown feature"));
    // An explicit -c must exist.
    let missing = tmp.path().join("missing.conf");
    let out = mkinitfs(&[
        "-c",
        missing.to_str().unwrap(),
        "-n",
        "-i",
        init.to_str().unwrap(),
        "-l",
        "x",
    ]);
    assert_eq!(
        error_line(&out),
        format!(
            "mkinitfs: ERROR: {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    // A config line that is shell is refused with its line number.
    fs::write(
        base.join("etc/mkinitfs/mkinitfs.conf"),
        "# c\nfeatures=\"$(id)\"\n",
    )
    .unwrap();
    let out = mkinitfs(&[
        "-b",
        base.to_str().unwrap(),
        "-n",
        "-i",
        init.to_str().unwrap(),
        "-l",
        "x",
    ]);
    assert_eq!(
        error_line(&out),
        format!(
            "mkinitfs: ERROR: {}: line 2: shell expansion ($, `) is not supported",
            base.join("etc/mkinitfs/mkinitfs.conf").display()
        )
    );
}
