//! `mkimage` end to end: the built binary on the Alpine 3.19.1 fixture repository, checked with
//! the host's own tools (mtools, fsck.fat, blkid, isoinfo) and with apk's index verification.
//!
//! Inputs are made here: Alpine's public keys come out of the minirootfs fixture, medium keys are
//! generated with the apk library, kernels and initramfs are made-up bytes (nothing boots here;
//! the qemu tests do that).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apk::trust::{Keyring, PrivateKey};

const EPOCH: &str = "1703680496"; // 2023-12-27 12:34:56 UTC

/// `apk add alpine-base` from the fixture installs these 25 packages (fixtures/README.md).
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

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn source_repo() -> PathBuf {
    fixtures().join("alpine-3.19.1/apks")
}

fn source_dir() -> PathBuf {
    source_repo().join("x86_64")
}

/// A scratch directory with Alpine's keys, a medium key pair and fake boot files.
struct Env {
    dir: tempfile::TempDir,
    alpine_keys: PathBuf,
    key: PathBuf,
    medium_keys: Keyring,
    kernel: PathBuf,
    initramfs: PathBuf,
}

impl Env {
    fn new() -> Env {
        Env::with_key(PrivateKey::generate_ed25519(), "medium.key")
    }

    fn with_key(key: PrivateKey, name: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("tar")
            .arg("xzf")
            .arg(fixtures().join("alpine-minirootfs-3.20.3-x86_64.tar.gz"))
            .arg("-C")
            .arg(dir.path())
            .arg("./etc/apk/keys")
            .status()
            .unwrap();
        assert!(st.success());
        let path = dir.path().join(name);
        fs::write(&path, key.to_pem().unwrap()).unwrap();
        let mut medium_keys = Keyring::default();
        medium_keys.insert(&format!("{name}.pub"), key.public());
        let kernel = dir.path().join("vmlinuz-lts");
        fs::write(&kernel, pattern(3_000_000, 1)).unwrap();
        // A real initramfs from the sibling binary, with the medium key the init will need.
        let pub_dir = dir.path().join("medium-keys");
        fs::create_dir(&pub_dir).unwrap();
        fs::write(pub_dir.join(format!("{name}.pub")), key.public().to_pem()).unwrap();
        let initramfs = mkinitramfs(dir.path(), &pub_dir);
        Env {
            alpine_keys: dir.path().join("etc/apk/keys"),
            dir,
            key: path,
            medium_keys,
            kernel,
            initramfs,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// mkimage with the fixture repository, Alpine's keys and `--world alpine-base`.
    fn base(&self, format: &str, out: &Path) -> Command {
        let mut c = mkimage();
        c.args(["--format", format, "-o"])
            .arg(out)
            .arg("--repository")
            .arg(source_repo())
            .arg("--keys-dir")
            .arg(&self.alpine_keys)
            .args(["--world", "alpine-base"]);
        c
    }

    /// [`Env::base`] with the medium key, the kernel and the initramfs.
    fn alpine_base(&self, format: &str, out: &Path) -> Command {
        let mut c = self.base(format, out);
        c.arg("--sign-key")
            .arg(&self.key)
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--initramfs")
            .arg(&self.initramfs);
        c
    }
}

/// An initramfs without modules whose `etc/apk/keys` holds the keys of `keys_dir`.
fn mkinitramfs(dir: &Path, keys_dir: &Path) -> PathBuf {
    let init = dir.join("init-program");
    fs::write(&init, pattern(100_000, 2)).unwrap();
    let out = dir.join(format!(
        "initramfs-{}",
        keys_dir.file_name().unwrap().to_string_lossy()
    ));
    initramfs(&init, "base", Some(keys_dir), "0.0-none", &out);
    out
}

/// An initramfs without modules and without keys, with `identity` as `--ovl-identity`.
fn initramfs_with(init: &Path, identity: Option<&Path>, out: &Path) {
    let overrides = mkinitfs::Overrides {
        basedir: Some("/".into()),
        features: Some(vec!["base".into()]),
        init: Some(init.to_path_buf()),
        no_modules: true,
        kernel_version: Some("0.0-none".into()),
        ovl_identity: identity.map(Path::to_path_buf),
        ..Default::default()
    };
    build_initramfs(&overrides, out);
}

/// An initramfs without modules trusting `keys_dir` for indexes and `ovl_keys_dir` for overlays.
fn initramfs_keys(init: &Path, keys_dir: &Path, ovl_keys_dir: &Path, out: &Path) {
    let overrides = mkinitfs::Overrides {
        basedir: Some("/".into()),
        features: Some(vec!["base".into()]),
        init: Some(init.to_path_buf()),
        no_modules: true,
        keys_dirs: vec![keys_dir.to_path_buf()],
        ovl_keys_dirs: vec![ovl_keys_dir.to_path_buf()],
        kernel_version: Some("0.0-none".into()),
        ..Default::default()
    };
    build_initramfs(&overrides, out);
}

/// `mkinitfs -b / -n? -F FEATURES -i INIT [--keys-dir DIR] -o OUT KVER` through the library
/// (the sibling crate's binary is not built for this one's tests); `-n` when `kver` has no
/// modules directory.
fn initramfs(init: &Path, features: &str, keys_dir: Option<&Path>, kver: &str, out: &Path) {
    let overrides = mkinitfs::Overrides {
        basedir: Some("/".into()),
        features: Some(features.split_whitespace().map(str::to_string).collect()),
        init: Some(init.to_path_buf()),
        no_modules: !Path::new("/lib/modules").join(kver).is_dir(),
        keys_dirs: keys_dir.into_iter().map(Path::to_path_buf).collect(),
        kernel_version: Some(kver.to_string()),
        ..Default::default()
    };
    build_initramfs(&overrides, out);
}

/// Build an initramfs from `overrides` with the workspace's mkinitfs features, written to `out`.
fn build_initramfs(overrides: &mkinitfs::Overrides, out: &Path) {
    let features_d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mkinitfs/features.d");
    let config = mkinitfs::Config::resolve(
        &mkinitfs::ConfFile::default(),
        overrides,
        None,
        vec![features_d],
    )
    .unwrap();
    mkinitfs::build(&config).unwrap().write_to(out).unwrap();
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn mkimage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mkimage"));
    c.env("SOURCE_DATE_EPOCH", EPOCH);
    c
}

fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(c: &mut Command) -> String {
    String::from_utf8(run(c).stdout).unwrap()
}

/// Runs a failing mkimage and returns its stderr; the exit code must be 1 and stdout free of
/// errors.
fn failure(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{c:?}: {out:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn blkid(img: &Path, tag: &str) -> String {
    let out = run(Command::new("blkid")
        .args(["-p", "-o", "value", "-s", tag])
        .arg(img));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every file under `dir` as relative path -> (mode, mtime, content); directories as (mode, mtime).
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, i64, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if m.is_dir() {
                stack.push(p.clone());
                out.insert(rel, (m.mode(), m.mtime(), None));
            } else {
                out.insert(rel, (m.mode(), m.mtime(), Some(fs::read(&p).unwrap())));
            }
        }
    }
    let m = fs::metadata(dir).unwrap();
    out.insert(String::new(), (m.mode(), m.mtime(), None));
    out
}

fn package_files(names: &[&str]) -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(source_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| {
            names.iter().any(|n| {
                f.strip_prefix(n).is_some_and(|rest| {
                    // name-<version>.apk where the version starts with a digit
                    rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit())
                })
            })
        })
        .collect();
    files.sort();
    files
}

/// Index entries of the source repository by name.
fn source_entries() -> BTreeMap<String, apk::package::Package> {
    let buf = fs::read(source_dir().join("APKINDEX.tar.gz")).unwrap();
    let f = apk::archive::open_index(&buf, &Keyring::default(), true).unwrap();
    apk::index::parse(&f.text)
        .packages
        .into_iter()
        .map(|p| (p.name.to_string(), p))
        .collect()
}

/// Checks a repository directory on the medium: exactly `names`, byte-identical packages, an index
/// listing exactly them with their source entries unchanged, verified by the medium key only.
fn check_repository(dir: &Path, names: &[&str], env: &Env) {
    let mut expected = package_files(names);
    assert_eq!(expected.len(), names.len(), "fixture files for {names:?}");
    expected.push("APKINDEX.tar.gz".into());
    expected.sort();
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, expected);
    for f in package_files(names) {
        assert!(
            fs::read(dir.join(&f)).unwrap() == fs::read(source_dir().join(&f)).unwrap(),
            "{f} differs from its source"
        );
    }
    let index = fs::read(dir.join("APKINDEX.tar.gz")).unwrap();
    let opened = apk::archive::open_index(&index, &env.medium_keys, false).unwrap();
    let key_name = format!("{}.pub", env.key.file_name().unwrap().to_string_lossy());
    assert_eq!(opened.signed_by.as_deref(), Some(key_name.as_str()));
    let source = source_entries();
    let entries = apk::index::parse(&opened.text).packages;
    let mut listed: Vec<&str> = entries.iter().map(|p| p.name.as_str()).collect();
    listed.sort();
    let mut want = names.to_vec();
    want.sort();
    assert_eq!(listed, want);
    for p in &entries {
        assert_eq!(p, &source[p.name.as_str()], "index entry of {}", p.name);
    }
    // Alpine's keys do not verify it, nor does another key under the same name.
    assert_eq!(
        apk::archive::open_index(&index, &Keyring::load(&env.alpine_keys), false).unwrap_err(),
        apk::archive::ArchiveError::Untrusted
    );
    let mut other = Keyring::default();
    other.insert(&key_name, PrivateKey::generate_ed25519().public());
    assert_eq!(
        apk::archive::open_index(&index, &other, false).unwrap_err(),
        apk::archive::ArchiveError::BadSignature
    );
}

/// Nothing but `keep` in the output's directory: no temporary or half-written files.
fn assert_only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut keep: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    keep.sort();
    assert_eq!(names, keep);
}

#[test]
fn vfat_medium_holds_the_alpine_base_closure() {
    let env = Env::new();
    let out_dir = env.path("out");
    fs::create_dir(&out_dir).unwrap();
    let img = out_dir.join("medium.img");
    let text = stdout(env.alpine_base("vfat", &img).args([
        "--label",
        "ALPTEST",
        "--cmdline",
        "console=ttyS0 quiet",
    ]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        [
            format!("Loaded {} (100 packages)", source_repo().display()),
            "Copying 25 packages to apks/x86_64".to_string(),
            format!(
                "Signing apks/x86_64/APKINDEX.tar.gz with {}",
                env.key.display()
            ),
            format!("Writing vfat image {} (64M)", img.display()),
        ]
    );
    assert!(lines[4].starts_with(&format!(
        "{}: alpine-diskless-3.19.1 231227, 25 packages, ",
        img.display()
    )));
    assert_eq!(lines.len(), 5);
    assert_only(&out_dir, &["medium.img"]);
    assert_eq!(fs::metadata(&img).unwrap().len(), 64 << 20);

    // A stick's partition table: one active FAT32 (LBA) partition from 1 MiB to the end, and
    // syslinux's MBR code before it.
    assert_eq!(blkid(&img, "PTTYPE"), "dos");
    let parts = stdout(
        Command::new("partx")
            .args(["-g", "-o", "NR,START,SECTORS,TYPE,FLAGS"])
            .arg(&img),
    );
    assert_eq!(
        parts.split_whitespace().collect::<Vec<_>>(),
        ["1", "2048", "129024", "0xc", "0x80"]
    );
    let mbr = fs::read("/usr/lib/syslinux/mbr/mbr.bin").unwrap();
    assert_eq!(fs::read(&img).unwrap()[..440], mbr[..440]);
    let part = partition(&img, &env.path("partition"));

    // The host's tools accept the partition and find it by label.
    run(Command::new("fsck.fat").arg("-n").arg(&part));
    assert_eq!(blkid(&part, "TYPE"), "vfat");
    assert_eq!(blkid(&part, "LABEL"), "ALPTEST");
    let img = part;
    let listing = stdout(
        Command::new("mdir")
            .args(["-b", "-i"])
            .arg(&img)
            .arg("::/apks/x86_64"),
    );
    let mut listed: Vec<&str> = listing
        .lines()
        .map(|l| l.trim_start_matches("::/apks/x86_64/"))
        .collect();
    listed.sort();
    let mut expected = package_files(&ALPINE_BASE);
    expected.push("APKINDEX.tar.gz".into());
    expected.sort();
    assert_eq!(listed, expected);

    // Copied out with mtools, the tree is what was planned, byte for byte.
    let ext = env.path("extracted");
    fs::create_dir(&ext).unwrap();
    run(Command::new("mcopy")
        .args(["-s", "-i"])
        .arg(&img)
        .args(["::/apks", "::/boot", "::/.alpine-release"])
        .arg(&ext));
    check_repository(&ext.join("apks/x86_64"), &ALPINE_BASE, &env);
    assert_eq!(fs::read(ext.join("apks/.boot_repository")).unwrap(), b"");
    assert_eq!(
        fs::read(ext.join("boot/vmlinuz")).unwrap(),
        fs::read(&env.kernel).unwrap()
    );
    assert_eq!(
        fs::read(ext.join("boot/initramfs")).unwrap(),
        fs::read(&env.initramfs).unwrap()
    );
    assert_eq!(
        fs::read_to_string(ext.join(".alpine-release")).unwrap(),
        "alpine-diskless-3.19.1 231227\n"
    );
    let syslinux = fs::read_to_string(ext.join("boot/syslinux/syslinux.cfg")).unwrap();
    assert!(
        syslinux.contains(
            "  KERNEL /boot/vmlinuz\n  INITRD /boot/initramfs\n  APPEND console=ttyS0 quiet modloop=none\n"
        ),
        "{syslinux}"
    );
    assert_eq!(
        fs::read_to_string(ext.join("boot/extlinux/extlinux.conf")).unwrap(),
        syslinux
    );
    let grub = fs::read_to_string(ext.join("boot/grub/grub.cfg")).unwrap();
    assert!(
        grub.contains(
            "\tlinux /boot/vmlinuz console=ttyS0 quiet modloop=none\n\tinitrd /boot/initramfs\n"
        ),
        "{grub}"
    );
    // mtools sees the build time on every entry, syslinux's file included.
    let boot = stdout(Command::new("mdir").arg("-i").arg(&img).arg("::/boot"));
    assert!(
        boot.contains("VMLINUZ        3000000 2023-12-27  12:34  vmlinuz"),
        "{boot}"
    );
    // The boot loaders: syslinux (its boot sector, ldlinux.sys and ldlinux.c32) for BIOS,
    // GRUB as EFI/BOOT/BOOTX64.EFI for UEFI.
    let syslinux_dir = stdout(
        Command::new("mdir")
            .args(["-a", "-i"])
            .arg(&img)
            .arg("::/boot/syslinux"),
    );
    assert!(
        syslinux_dir.contains("ldlinux  sys") && syslinux_dir.contains("ldlinux  c32"),
        "{syslinux_dir}"
    );
    assert!(syslinux_dir.contains("2023-12-27  12:34"), "{syslinux_dir}");
    let boot_sector = fs::read(&img).unwrap();
    assert_eq!(&boot_sector[3..11], b"SYSLINUX", "syslinux's boot sector");
    assert_eq!(&boot_sector[0x52..0x5A], b"FAT32   ");
    let efi = ext.join("BOOTX64.EFI");
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&img)
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .arg(&efi));
    let efi = fs::read(&efi).unwrap();
    assert_eq!(&efi[..2], b"MZ");
    let grub = String::from_utf8_lossy(&efi);
    assert!(
        grub.contains("search --no-floppy --set=root --label ALPTEST"),
        "the embedded configuration finds the medium by label"
    );
}

/// The first partition of `img` as its own file at `out` (fsck.fat and blkid take files).
fn partition(img: &Path, out: &Path) -> PathBuf {
    let bytes = fs::read(img).unwrap();
    fs::write(out, &bytes[1 << 20..]).unwrap();
    out.to_path_buf()
}

#[test]
fn vfat_and_dir_outputs_are_reproducible() {
    let env = Env::new();
    let a = env.path("a.img");
    let b = env.path("b.img");
    run(env.alpine_base("vfat", &a).arg("-q"));
    run(env.alpine_base("vfat", &b).arg("-q"));
    assert!(
        fs::read(&a).unwrap() == fs::read(&b).unwrap(),
        "vfat bytes differ"
    );
    // A different build time gives a different image (times and serial).
    run(env
        .alpine_base("vfat", &b)
        .arg("-q")
        .env("SOURCE_DATE_EPOCH", "1703680600"));
    assert!(fs::read(&a).unwrap() != fs::read(&b).unwrap());

    let d1 = env.path("d1");
    let d2 = env.path("d2");
    run(env.alpine_base("dir", &d1).arg("-q"));
    run(env.alpine_base("dir", &d2).arg("-q"));
    let s1 = snapshot(&d1);
    assert_eq!(s1, snapshot(&d2));
    assert!(s1.values().all(|(_, mtime, _)| *mtime == 1_703_680_496));
    assert_eq!(s1["apks/x86_64/busybox-1.36.1-r15.apk"].0 & 0o7777, 0o644);
    assert_eq!(s1["apks"].0 & 0o7777, 0o755);
    check_repository(&d1.join("apks/x86_64"), &ALPINE_BASE, &env);
    // Building again over an existing medium replaces it whole, leaving nothing beside it.
    fs::write(d1.join("stale"), b"x").unwrap();
    run(env.alpine_base("dir", &d1).arg("-q"));
    assert_eq!(snapshot(&d1), s1);
    assert!(!env.path("d1.tmp").exists() && !env.path("d1.old").exists());
}

#[test]
fn iso_medium_lists_the_tree_and_label() {
    let env = Env::new();
    let iso = env.path("medium.iso");
    run(env
        .alpine_base("iso", &iso)
        .args(["-q", "--label", "alpine-3.19-x86_64"]));
    assert_eq!(blkid(&iso, "TYPE"), "iso9660");
    // Reproducible, boot images included (their times come from SOURCE_DATE_EPOCH too, not
    // the clock: the second build starts in another second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = env.path("again.iso");
    run(env
        .alpine_base("iso", &again)
        .args(["-q", "--label", "alpine-3.19-x86_64"]));
    assert!(
        fs::read(&iso).unwrap() == fs::read(&again).unwrap(),
        "iso bytes differ"
    );
    assert_eq!(blkid(&iso, "LABEL"), "alpine-3.19-x86_64");
    for ext in ["-R", "-J"] {
        let listing = stdout(Command::new("isoinfo").args([ext, "-f", "-i"]).arg(&iso));
        let files: Vec<&str> = listing.lines().collect();
        for f in package_files(&ALPINE_BASE) {
            let want = format!("/apks/x86_64/{f}");
            assert!(files.contains(&want.as_str()), "{ext}: {want} missing");
        }
        for f in [
            "/.alpine-release",
            "/apks/.boot_repository",
            "/apks/x86_64/APKINDEX.tar.gz",
            "/boot/vmlinuz",
            "/boot/initramfs",
            "/boot/syslinux/syslinux.cfg",
            "/boot/grub/grub.cfg",
            "/boot/syslinux/isolinux.bin",
            "/boot/syslinux/ldlinux.c32",
            "/boot/syslinux/boot.cat",
            "/boot/efi.img",
            "/EFI/BOOT/BOOTX64.EFI",
        ] {
            assert!(files.contains(&f), "{ext}: {f} missing");
        }
        assert_eq!(files.len(), 25 + 21, "{ext}: {listing}");
    }
    // Hybrid: El Torito records for BIOS (isolinux) and UEFI (the EFI image), and a partition
    // table so the same file boots from a USB stick.
    let eltorito = stdout(
        Command::new("xorriso")
            .args(["-indev"])
            .arg(&iso)
            .args(["-report_el_torito", "plain"]),
    );
    assert!(
        eltorito.contains("/boot/syslinux/isolinux.bin") && eltorito.contains("/boot/efi.img"),
        "{eltorito}"
    );
    assert!(
        eltorito.contains(" BIOS ") && eltorito.contains(" UEFI "),
        "{eltorito}"
    );
    assert_eq!(blkid(&iso, "PTTYPE"), "dos");
    let efi_img = env.path("efi.img");
    fs::write(
        &efi_img,
        run(Command::new("isoinfo")
            .args(["-R", "-i"])
            .arg(&iso)
            .args(["-x", "/boot/efi.img"]))
        .stdout,
    )
    .unwrap();
    let esp = stdout(
        Command::new("mdir")
            .args(["-b", "-i"])
            .arg(&efi_img)
            .arg("::/EFI/BOOT"),
    );
    assert_eq!(esp.trim(), "::/EFI/BOOT/BOOTX64.EFI", "{esp}");
    let busybox = run(Command::new("isoinfo")
        .args(["-R", "-i"])
        .arg(&iso)
        .args(["-x", "/apks/x86_64/busybox-1.36.1-r15.apk"]))
    .stdout;
    assert!(busybox == fs::read(source_dir().join("busybox-1.36.1-r15.apk")).unwrap());
}

#[test]
fn iso_without_xorriso_is_a_clear_error() {
    let env = Env::new();
    let iso = env.path("medium.iso");
    // Every other tool the ISO needs is there.
    let path = env.path("tools");
    fs::create_dir(&path).unwrap();
    for tool in ["grub-mkimage", "mkfs.vfat", "mmd", "mcopy"] {
        let host = ["/usr/bin", "/usr/sbin", "/sbin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} (make deps)"));
        std::os::unix::fs::symlink(host, path.join(tool)).unwrap();
    }
    let err = failure(env.alpine_base("iso", &iso).arg("-q").env("PATH", &path));
    assert_eq!(err, "mkimage: ERROR: xorriso: not found in PATH (needed for --format iso; Debian and Alpine: install the xorriso package)\n");
    assert!(
        !iso.exists()
            && !env.path("medium.iso.tmp").exists()
            && !env.path("medium.iso.stage").exists()
    );
}

#[test]
fn untrusted_source_is_refused_unless_allowed() {
    let env = Env::new();
    let empty = env.path("no-keys");
    fs::create_dir(&empty).unwrap();
    let out = env.path("out");
    fs::create_dir(&out).unwrap();
    let img = out.join("medium.img");
    let mut c = mkimage();
    c.args(["--format", "vfat", "-o"])
        .arg(&img)
        .arg("--repository")
        .arg(source_repo())
        .arg("--keys-dir")
        .arg(&empty)
        .args(["--world", "alpine-base", "--sign-key"])
        .arg(&env.key);
    let err = failure(&mut c);
    assert_eq!(
        err,
        format!(
            "mkimage: ERROR: {}/x86_64/APKINDEX.tar.gz: UNTRUSTED signature (add its key with --keys-dir, or use --allow-untrusted)\n",
            source_repo().display()
        )
    );
    assert_only(&out, &[]);
    run(c.args(["--allow-untrusted", "-q"]));
    assert_only(&out, &["medium.img"]);
}

#[test]
fn unknown_world_package_fails_with_apks_block() {
    let env = Env::new();
    let out = env.path("medium");
    let err = failure(
        env.alpine_base("dir", &out)
            .args(["--world", "alpine-base nosuchpkg"]),
    );
    assert_eq!(
        err,
        "mkimage: ERROR: --world: unable to select packages:\n  nosuchpkg (no such package):\n    required by: world[nosuchpkg]\n"
    );
    assert!(!out.exists() && !env.path("medium.tmp").exists());
    // Conflicts come out in apk's words too.
    let err = failure(
        env.alpine_base("dir", &out)
            .args(["--world", "alpine-base vlan"]),
    );
    // apk-tools v3's report: the package that cannot be selected, what it breaks, what it satisfies.
    assert_eq!(
        err,
        "mkimage: ERROR: --world: unable to select packages:\n  vlan-2.3-r1:\n    breaks: ifupdown-ng-0.12.1-r4[!vlan]\n    satisfies: world[vlan]\n"
    );
}

#[test]
fn bad_inputs_are_one_line_errors_and_leave_nothing() {
    let env = Env::new();
    let out_dir = env.path("out");
    fs::create_dir(&out_dir).unwrap();
    let img = out_dir.join("medium.img");
    let garbage = env.path("garbage.key");
    fs::write(&garbage, b"not a key").unwrap();
    let huge = env.path("huge-kernel");
    fs::File::create(&huge).unwrap().set_len(70 << 20).unwrap();
    let missing = env.path("missing");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--kernel".into(), missing.display().to_string()],
            format!("--kernel {}: No such file or directory (os error 2)", missing.display()),
        ),
        (
            vec!["--initramfs".into(), out_dir.display().to_string()],
            format!("--initramfs {}: not a regular file", out_dir.display()),
        ),
        (
            vec!["--sign-key".into(), garbage.display().to_string()],
            format!("--sign-key {}: not a PEM RSA or ed25519 private key", garbage.display()),
        ),
        (
            vec!["--sign-key".into(), missing.display().to_string()],
            format!("--sign-key {}: No such file or directory (os error 2)", missing.display()),
        ),
        (
            vec!["--kernel".into(), huge.display().to_string(), "--size".into(), "64M".into()],
            "--size 64M: too small for the content (needs at least 77M)".into(),
        ),
        (
            vec!["--size".into(), "32M".into()],
            "--size: 32M is out of range: from 64M to 2T for FAT32".into(),
        ),
        (vec!["--size".into(), "1.5G".into()], "--size: \"1.5G\": unknown unit (use K, M, G or T, e.g. 256M)".into()),
        (
            vec!["--label".into(), "MUCH_TOO_LONG".into()],
            "--label: \"MUCH_TOO_LONG\" is 13 characters; vfat labels hold at most 11".into(),
        ),
        (
            vec!["--world".into(), "bad==".into()],
            "--world: 'bad==' is not a valid dependency".into(),
        ),
        (
            vec!["--keys-dir".into(), missing.display().to_string()],
            format!("--keys-dir {}: not a directory", missing.display()),
        ),
        (
            vec!["--apkovl".into(), env.kernel.display().to_string()],
            format!("--apkovl {}: the name must match *.apkovl.tar.gz* (e.g. HOSTNAME.apkovl.tar.gz), or the init will not find it", env.kernel.display()),
        ),
        (
            vec!["--cmdline".into(), "a\nb".into()],
            "--cmdline: contains the control character '\\n' (one line of words expected)".into(),
        ),
    ];
    for (mut args, want) in cases {
        if !args.contains(&"--sign-key".to_string()) {
            args.extend(["--sign-key".to_string(), env.key.display().to_string()]);
        }
        let err = failure(env.base("vfat", &img).args(&args));
        assert_eq!(err, format!("mkimage: ERROR: {want}\n"), "{args:?}");
        assert_only(&out_dir, &[]);
    }
    // A malformed SOURCE_DATE_EPOCH is refused rather than ignored.
    let err = failure(
        env.alpine_base("vfat", &img)
            .env("SOURCE_DATE_EPOCH", "yesterday"),
    );
    assert_eq!(
        err,
        "mkimage: ERROR: SOURCE_DATE_EPOCH: \"yesterday\" is not a number of seconds\n"
    );
    // --world needs a key to sign the index with.
    let mut c = mkimage();
    c.args(["--format", "dir", "-o"])
        .arg(&img)
        .arg("--repository")
        .arg(source_repo())
        .args(["--world", "alpine-base"]);
    assert_eq!(
        failure(&mut c),
        "mkimage: ERROR: --sign-key: required to sign the index of the packages copied to the medium\n"
    );
    // An image is never written over a device.
    let err = failure(env.alpine_base("vfat", Path::new("/dev/null")).arg("-q"));
    assert_eq!(err, "mkimage: ERROR: -o /dev/null: is a device; write the image to a file and copy it with dd\n");
    assert_only(&out_dir, &[]);
}

#[test]
fn initramfs_without_the_medium_key_is_warned_about() {
    let env = Env::new();
    let other = env.path("other-keys");
    fs::create_dir(&other).unwrap();
    fs::write(
        other.join("medium.key.pub"),
        PrivateKey::generate_ed25519().public().to_pem(),
    )
    .unwrap();
    let empty = env.path("no-keys");
    fs::create_dir(&empty).unwrap();
    let out = env.path("medium");
    for (keys, why) in [
        (&empty, "has no etc/apk/keys/medium.key.pub".to_string()),
        (
            &other,
            format!(
                "etc/apk/keys/medium.key.pub is not the public half of --sign-key {}",
                env.key.display()
            ),
        ),
    ] {
        let initramfs = mkinitramfs(env.dir.path(), keys);
        let output = run(env
            .base("dir", &out)
            .arg("-q")
            .arg("--sign-key")
            .arg(&env.key)
            .arg("--initramfs")
            .arg(&initramfs));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!(
                "mkimage: WARNING: --initramfs {}: {why}: the init will not trust the boot repository (mkinitfs --keys-dir DIR, with the .pub file in DIR)\n",
                initramfs.display()
            )
        );
    }
}

/// Issue 13 item 1, mkimage's side: a private key never reaches a medium, whether it sits in a
/// directory of trusted keys (`apk keygen -o DIR/KEY` writes both halves there), among the files
/// copied onto the medium, or inside the initramfs. Each is one line naming the file, exit 1, and
/// nothing at -o. The age identity of `mkinitfs --ovl-identity` is the one allowed exception.
#[test]
fn private_keys_never_reach_the_medium() {
    let env = Env::new();
    let out_dir = env.path("out");
    fs::create_dir(&out_dir).unwrap();
    let medium = out_dir.join("medium");
    let pem = PrivateKey::generate_ed25519().to_pem().unwrap();

    // Both halves in the trusted keys directory.
    let keys = env.path("alpine-and-private");
    fs::create_dir(&keys).unwrap();
    for e in fs::read_dir(&env.alpine_keys).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), keys.join(e.file_name())).unwrap();
    }
    fs::write(keys.join("medium.key"), &pem).unwrap();
    let mut c = env.alpine_base("dir", &medium);
    c.arg("--keys-dir").arg(&keys);
    assert_eq!(
        failure(&mut c),
        format!(
            "mkimage: ERROR: --keys-dir {}: a PEM private key (PRIVATE KEY): a directory of trusted keys holds public keys only (the .pub file)\n",
            keys.join("medium.key").display()
        )
    );
    assert_only(&out_dir, &[]);

    // A private key in the cache copied to /cache/.
    let cache = env.path("cache");
    fs::create_dir(&cache).unwrap();
    fs::write(cache.join("overlay.key"), &pem).unwrap();
    let err = failure(env.alpine_base("dir", &medium).arg("--cache").arg(&cache));
    assert_eq!(
        err,
        format!(
            "mkimage: ERROR: --cache {}: a PEM private key (PRIVATE KEY): only public keys may go on a medium\n",
            cache.join("overlay.key").display()
        )
    );
    assert_only(&out_dir, &[]);

    // The medium key inside the initramfs (an initramfs from another tool).
    let mut tree = mkinitfs::tree::Tree::new();
    tree.add_bytes("init", b"x".to_vec(), 0o755).unwrap();
    tree.add_bytes("etc/apk/keys/medium.key", pem.clone(), 0o644)
        .unwrap();
    let bad = env.path("initramfs-with-key");
    let archive = mkinitfs::cpio::write_tree(&tree, 0, Vec::new(), &bad).unwrap();
    fs::write(&bad, zstd::encode_all(&archive[..], 3).unwrap()).unwrap();
    let mut c = env.base("dir", &medium);
    c.arg("--sign-key")
        .arg(&env.key)
        .arg("--initramfs")
        .arg(&bad);
    assert_eq!(
        failure(&mut c),
        format!(
            "mkimage: ERROR: --initramfs {}: /etc/apk/keys/medium.key: a PEM private key (PRIVATE KEY): only public keys may enter an image\n",
            bad.display()
        )
    );
    assert_only(&out_dir, &[]);

    // An initramfs with an overlay identity, embedded on purpose by mkinitfs: accepted, and the
    // identity is on the medium only inside the initramfs.
    let id = age::x25519::Identity::generate();
    let id_file = env.path("overlay.identity");
    fs::write(
        &id_file,
        format!(
            "# public key: {}\n{}\n",
            id.to_public(),
            age::secrecy::ExposeSecret::expose_secret(&id.to_string())
        ),
    )
    .unwrap();
    let with_id = env.path("initramfs-with-identity");
    initramfs_with(&env.path("init-program"), Some(&id_file), &with_id);
    let mut c = env.base("dir", &medium);
    c.arg("-q")
        .arg("--sign-key")
        .arg(&env.key)
        .arg("--initramfs")
        .arg(&with_id);
    run(&mut c);
    let secret = age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
    for (path, (_, _, data)) in snapshot(&medium) {
        if let Some(data) = data {
            let text = String::from_utf8_lossy(&data);
            assert!(!text.contains(&secret), "{path} holds the identity");
        }
    }
}

#[test]
fn rsa_key_signs_the_index() {
    let env = Env::with_key(PrivateKey::generate_rsa(2048).unwrap(), "medium.rsa");
    let out = env.path("medium");
    run(env.alpine_base("dir", &out).arg("-q"));
    check_repository(&out.join("apks/x86_64"), &ALPINE_BASE, &env);
    // Signed as abuild signs: RSA with SHA-256, named after the key file.
    let index = fs::read(out.join("apks/x86_64/APKINDEX.tar.gz")).unwrap();
    let head = flate2_first_member_names(&index);
    assert_eq!(head, [".SIGN.RSA256.medium.rsa.pub"]);
}

/// Names in the first gzip member (the signature) of an index, read with the host's tar.
fn flate2_first_member_names(index: &[u8]) -> Vec<String> {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("i.tar.gz");
    fs::write(&p, index).unwrap();
    // tar stops after the first member's end-of-archive (the signature member is cut), so list
    // with --ignore-zeros to see every member and keep the .SIGN entries.
    let out = run(Command::new("tar").arg("tzf").arg(&p).arg("--ignore-zeros"));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(".SIGN."))
        .map(str::to_string)
        .collect()
}

#[test]
fn extra_repository_holds_what_apk_add_needs_later() {
    let env = Env::new();
    let out = env.path("medium");
    let text = stdout(
        env.alpine_base("dir", &out)
            .args(["--world-extra", "dhcpcd"]),
    );
    assert!(
        text.contains("Copying 2 packages to apks-extra/x86_64\n"),
        "{text}"
    );
    check_repository(&out.join("apks/x86_64"), &ALPINE_BASE, &env);
    // dhcpcd, and dhcpcd-openrc through install_if (dhcpcd + openrc); musl is on apks/ already.
    check_repository(
        &out.join("apks-extra/x86_64"),
        &["dhcpcd", "dhcpcd-openrc"],
        &env,
    );
    assert!(!out.join("apks-extra/.boot_repository").exists());
}

#[test]
fn extra_repository_without_world_is_copied_whole_and_checked() {
    let env = Env::new();
    let out = env.path("medium");
    // The abuild fixture's index lists packages whose files are not there: refused, by name.
    let abuild = fixtures().join("abuild-repo");
    let mut c = mkimage();
    c.args(["--format", "dir", "-q", "-o"])
        .arg(&out)
        .arg("--extra-repository")
        .arg(abuild.join("APKINDEX.tar.gz"))
        .arg("--keys-dir")
        .arg(&abuild)
        .arg("--sign-key")
        .arg(&env.key);
    let err = failure(&mut c);
    assert!(
        err.starts_with(&format!("mkimage: ERROR: {}/", abuild.display()))
            && err.ends_with(
                ".apk: missing, but listed by its repository index as 8821cu-src-0-r1\n"
            ),
        "{err}"
    );
    assert!(!out.exists());
    // A complete repository is copied whole (minus the boot closure).
    let mut c = mkimage();
    c.args(["--format", "dir", "-q", "-o"])
        .arg(&out)
        .arg("--repository")
        .arg(source_repo())
        .arg("--extra-repository")
        .arg(source_repo())
        .arg("--keys-dir")
        .arg(&env.alpine_keys)
        .args(["--world", "alpine-base", "--sign-key"])
        .arg(&env.key);
    run(&mut c);
    let all: Vec<String> = source_entries().into_keys().collect();
    let rest: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|n| !ALPINE_BASE.contains(n))
        .collect();
    assert_eq!(rest.len(), 75);
    check_repository(&out.join("apks-extra/x86_64"), &rest, &env);
}

/// A small squashfs in the modloop layout for kernel `kver`, made with mksquashfs.
fn small_modloop(env: &Env, name: &str, kver: &str) -> PathBuf {
    let tree = env.path(&format!("{name}.tree"));
    fs::create_dir_all(tree.join("modules").join(kver)).unwrap();
    fs::write(tree.join("modules").join(kver).join("modules.dep"), b"").unwrap();
    let out = env.path(name);
    run(Command::new("mksquashfs").arg(&tree).arg(&out).args([
        "-comp",
        "zstd",
        "-all-root",
        "-noappend",
        "-no-progress",
        "-quiet",
    ]));
    out
}

#[test]
fn overlay_cache_and_modloop_are_copied() {
    let env = Env::new();
    let ovl = env.path("fw1.apkovl.tar.gz");
    fs::write(&ovl, b"overlay").unwrap();
    fs::write(env.path("fw1.apkovl.tar.gz.sig"), b"signature").unwrap();
    // Named after its kernel's flavor on the medium, whatever the file's name.
    let modloop = small_modloop(&env, "built-modloop", "6.6.7-0-lts");
    let cache = env.path("cache");
    fs::create_dir(&cache).unwrap();
    fs::write(cache.join("dhcpcd-10.0.5-r0.0123abcd.apk"), b"cached").unwrap();
    fs::write(cache.join("APKINDEX.53cade54.tar.gz"), b"index").unwrap();
    let out = env.path("medium");
    run(env
        .alpine_base("dir", &out)
        .arg("-q")
        .arg("--apkovl")
        .arg(&ovl)
        .arg("--modloop")
        .arg(&modloop)
        .arg("--cache")
        .arg(&cache));
    assert_eq!(fs::read(out.join("fw1.apkovl.tar.gz")).unwrap(), b"overlay");
    assert_eq!(
        fs::read(out.join("fw1.apkovl.tar.gz.sig")).unwrap(),
        b"signature"
    );
    let bytes = fs::read(&modloop).unwrap();
    assert_eq!(fs::read(out.join("boot/modloop-lts")).unwrap(), bytes);
    check_modloop_signature(&env, &out, "modloop-lts", "6.6.7-0-lts", &bytes);
    assert_eq!(
        fs::read(out.join("cache/dhcpcd-10.0.5-r0.0123abcd.apk")).unwrap(),
        b"cached"
    );
    assert_eq!(
        fs::read(out.join("cache/APKINDEX.53cade54.tar.gz")).unwrap(),
        b"index"
    );
    let syslinux = fs::read_to_string(out.join("boot/syslinux/syslinux.cfg")).unwrap();
    assert!(
        syslinux.contains(&format!(
            "  APPEND {} modloop=/boot/modloop-lts\n",
            mkimage::DEFAULT_CMDLINE
        )),
        "{syslinux}"
    );
}

/// The `.sig` beside the modloop verifies with the medium key and binds name, kernel and bytes.
fn check_modloop_signature(env: &Env, out: &Path, name: &str, kver: &str, bytes: &[u8]) {
    use sha2::Digest;
    let text = fs::read_to_string(out.join("boot").join(format!("{name}.sig"))).unwrap();
    let signed = bootspec::modloop::Signed::parse(&text).unwrap();
    let st = &signed.statement;
    assert_eq!((st.file.as_str(), st.kernel.as_str()), (name, kver));
    assert_eq!(st.size, bytes.len() as u64);
    assert_eq!(st.sha256, <[u8; 32]>::from(sha2::Sha256::digest(bytes)));
    let key = env
        .medium_keys
        .get(&st.key_name)
        .expect("signed by the medium key");
    assert!(key.verify(apk::trust::Alg::Ed25519, &st.message(), &signed.signature));
}

#[test]
fn modloop_built_on_the_fly_and_refusals() {
    let env = Env::new();
    // A module tree under a base directory, built with an exclude.
    let kver = "6.1.0-99-amd64";
    let mods = env.path("base/lib/modules").join(kver);
    fs::create_dir_all(mods.join("kernel/net/wireguard")).unwrap();
    fs::create_dir_all(mods.join("kernel/sound")).unwrap();
    fs::write(mods.join("kernel/net/wireguard/wireguard.ko"), b"wg").unwrap();
    fs::write(mods.join("kernel/sound/snd.ko"), b"snd").unwrap();
    fs::write(
        mods.join("modules.dep"),
        b"kernel/net/wireguard/wireguard.ko:\nkernel/sound/snd.ko:\n",
    )
    .unwrap();
    let out = env.path("medium");
    run(env
        .alpine_base("dir", &out)
        .arg("-q")
        .args(["--modloop-kver", kver, "--modloop-comp", "zstd"])
        .arg("--modloop-basedir")
        .arg(env.path("base"))
        .args(["--modloop-exclude", "kernel/sound/*"]));
    let image = out.join("boot/modloop-amd64");
    let bytes = fs::read(&image).unwrap();
    check_modloop_signature(&env, &out, "modloop-amd64", kver, &bytes);
    let list = mkimage::modloop::kernel_versions(&image).unwrap();
    assert_eq!(list, vec![kver.to_string()]);
    let grub = fs::read_to_string(out.join("boot/grub/grub.cfg")).unwrap();
    assert!(grub.contains("modloop=/boot/modloop-amd64"), "{grub}");
    assert!(!grub.contains("modloop=none"));

    // No key: nothing can verify the modloop at boot.
    let mut c = mkimage();
    c.args(["--format", "dir", "-o"])
        .arg(env.path("m2"))
        .arg("--kernel")
        .arg(&env.kernel)
        .arg("--modloop")
        .arg(&image);
    assert_eq!(
        failure(&mut c),
        "mkimage: ERROR: --sign-key: required to sign the modloop (the init mounts only a verified modloop)\n"
    );
    // Not a squashfs.
    let junk = env.path("modloop-junk");
    fs::write(&junk, b"not a squashfs").unwrap();
    let err = failure(
        env.alpine_base("dir", &env.path("m3"))
            .arg("--modloop")
            .arg(&junk),
    );
    assert!(
        err.starts_with(&format!(
            "mkimage: ERROR: --modloop {}: not a squashfs image",
            junk.display()
        )),
        "{err}"
    );
    // A kernel it does not hold.
    let err = failure(
        env.alpine_base("dir", &env.path("m4"))
            .arg("--modloop")
            .arg(&image)
            .args(["--modloop-kver", "6.6.7-0-lts"]),
    );
    assert!(
        err.contains("holds no modules/6.6.7-0-lts/modules.dep (it has: 6.1.0-99-amd64)"),
        "{err}"
    );
}

#[test]
fn without_world_only_the_given_files() {
    let env = Env::new();
    let out = env.path("medium");
    let mut c = mkimage();
    c.args(["--format", "dir", "-q", "-o"])
        .arg(&out)
        .arg("--kernel")
        .arg(&env.kernel);
    run(&mut c);
    let files: Vec<String> = snapshot(&out).into_keys().collect();
    assert_eq!(
        files,
        [
            "",
            ".alpine-release",
            "boot",
            "boot/extlinux",
            "boot/extlinux/extlinux.conf",
            "boot/grub",
            "boot/grub/grub.cfg",
            "boot/syslinux",
            "boot/syslinux/syslinux.cfg",
            "boot/vmlinuz"
        ]
    );
    assert_eq!(
        fs::read_to_string(out.join(".alpine-release")).unwrap(),
        format!("alpine-diskless-{} 231227\n", env!("CARGO_PKG_VERSION"))
    );
    let syslinux = fs::read_to_string(out.join("boot/syslinux/syslinux.cfg")).unwrap();
    assert!(!syslinux.contains("INITRD"));
}

#[test]
fn library_builds_the_same_medium_as_the_binary() {
    use mkimage::{Format, Options, SignKey};
    let env = Env::new();
    let by_binary = env.path("bin");
    run(env.alpine_base("dir", &by_binary).arg("-q"));
    let mut opts = Options::new(Format::Dir, env.path("lib"));
    opts.repositories = vec![mkimage::repository_spec(&source_repo().to_string_lossy()).unwrap()];
    opts.keys = Keyring::load(&env.alpine_keys);
    opts.world = mkimage::parse_world("alpine-base", "--world").unwrap();
    opts.sign_key = Some(SignKey::load(&env.key).unwrap());
    opts.kernel = Some(env.kernel.clone());
    opts.initramfs = Some(env.initramfs.clone());
    opts.build_time = EPOCH.parse().unwrap();
    opts.arch = "x86_64".into();
    let mut lines = Vec::new();
    let report = mkimage::build(&opts, &mut |l| lines.push(l.to_string())).unwrap();
    assert_eq!(report.packages, 25);
    assert_eq!(report.release, "alpine-diskless-3.19.1 231227");
    assert_eq!(lines.len(), 4);
    assert_eq!(snapshot(&by_binary), snapshot(&env.path("lib")));
}

#[test]
fn help_comes_from_the_doc_comments() {
    let text = stdout(Command::new(env!("CARGO_BIN_EXE_mkimage")).arg("--help"));
    assert!(text.starts_with("Build a diskless boot medium in Alpine's layout"));
    for opt in [
        "--repository <DIR|INDEX|URL>",
        "--world <PKGS>",
        "--world-extra <PKGS>",
        "--extra-repository <DIR|INDEX|URL>",
        "--sign-key <KEY>",
        "--size <SIZE>",
        "--keys-dir <DIR>",
        "--allow-untrusted",
        "--cache <DIR>",
        "--cache-dir <DIR>",
        "--ca <FILE>",
        "-q, --quiet",
    ] {
        assert!(text.contains(opt), "{opt} missing from --help");
    }
}

/// The installed kernel: a `/lib/modules/<kver>` with `modules.dep` and a `/boot/vmlinuz-<kver>`.
fn host_kernel() -> String {
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

/// SHA-256 of every file under `dir`, as `./relative/path` -> hex.
fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    snapshot(dir)
        .into_iter()
        .filter_map(|(path, (_, _, data))| {
            data.map(|d| (format!("./{path}"), hex(&Sha256::digest(&d))))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn linux_mounts_the_vfat_and_iso_media() {
    let env = Env::new();
    let reference = env.path("reference");
    run(env.alpine_base("dir", &reference).arg("-q"));
    let img = env.path("medium.img");
    run(env.alpine_base("vfat", &img).arg("-q"));
    let iso = env.path("medium.iso");
    run(env.alpine_base("iso", &iso).arg("-q"));

    // A guest that mounts both media read-only and hashes every file the kernel reads back.
    let script = env.path("guest-init");
    fs::write(
        &script,
        r#"#!/bin/sh
b=/bin/busybox
$b mkdir -p /proc /sys /dev /v /i
$b mount -t proc proc /proc
$b mount -t sysfs sys /sys
$b mount -t devtmpfs dev /dev
for m in virtio_pci virtio_blk vfat nls_cp437 nls_ascii isofs; do $b modprobe $m; done
n=0
while [ ! -b /dev/vdb ] && [ $n -lt 50 ]; do $b sleep 0.1; n=$((n+1)); done
$b mount -o ro -t vfat /dev/vda1 /v && echo MOUNTED vfat
$b mount -o ro -t iso9660 /dev/vdb /i && echo MOUNTED iso9660
for m in v i; do
  cd /$m && $b find . -type f | $b sort | while read f; do echo "F $m $($b sha256sum "$f")"; done
done
echo GUEST-DONE
$b poweroff -f
"#,
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kver = host_kernel();
    let initrd = env.path("guest-initrd");
    initramfs(
        &script,
        "base virtio vfat cdrom rescue",
        None,
        &kver,
        &initrd,
    );
    // The workspace's one qemu harness: bounded waits, a failure shows the console's tail.
    let image = qemu_tests::Image::kernel(format!("/boot/vmlinuz-{kver}"), &initrd)
        .cmdline("panic=-1 quiet")
        .disk(qemu_tests::Disk::virtio(&img).read_only())
        .disk(qemu_tests::Disk::virtio(&iso).read_only());
    let mut vm = qemu_tests::Vm::boot(
        &image,
        qemu_tests::Opts {
            memory_mib: 512,
            ..qemu_tests::Opts::named("mkimage-media-read-by-linux")
        },
    );
    vm.expect("GUEST-DONE");
    vm.wait_poweroff();
    let console = vm.text();
    assert!(
        console.contains("GUEST-DONE"),
        "guest did not finish:\n{console}"
    );
    assert!(
        console.contains("MOUNTED vfat") && console.contains("MOUNTED iso9660"),
        "{console}"
    );
    let want = tree_hashes(&reference);
    assert_eq!(want.len(), 25 + 8);
    for fs_name in ["v", "i"] {
        // The images add their boot loaders to the directory's tree.
        let boot_loader = |path: &str| {
            path.starts_with("./EFI/")
                || path.starts_with("./boot/syslinux/ldlinux.")
                || path.starts_with("./boot/syslinux/isolinux.")
                || path.starts_with("./boot/syslinux/boot.cat")
                || path == "./boot/efi.img"
        };
        let got: BTreeMap<String, String> = console
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("F {fs_name} ")))
            .filter_map(|l| l.split_once("  "))
            .filter(|(_, path)| !boot_loader(path))
            .map(|(hash, path)| (path.to_string(), hash.to_string()))
            .collect();
        assert_eq!(got, want, "files the kernel reads from {fs_name}");
    }
}

/// The fleet of the netboot tests: two host overlays, a hosts file naming them, one machine with
/// an overlay of its own (signed beside it), the overlay key.
struct Fleet {
    fw1: PathBuf,
    fw2: PathBuf,
    own: PathBuf,
    hosts: PathBuf,
    ovl_key: PathBuf,
    ovl_keys: PathBuf,
    /// The medium key in etc/apk/keys and the overlay key in etc/apkovl/keys.
    initramfs: PathBuf,
}

fn fleet(env: &Env) -> Fleet {
    let key = PrivateKey::generate_ed25519();
    let ovl_key = env.path("fleet.key");
    fs::write(&ovl_key, key.to_pem().unwrap()).unwrap();
    let ovl_keys = env.path("fleet-keys");
    fs::create_dir(&ovl_keys).unwrap();
    fs::write(ovl_keys.join("fleet.key.pub"), key.public().to_pem()).unwrap();
    let initramfs = env.path("initramfs-fleet");
    initramfs_keys(
        &env.path("init-program"),
        &env.path("medium-keys"),
        &ovl_keys,
        &initramfs,
    );
    let fw1 = env.path("fw1.apkovl.tar.gz");
    fs::write(&fw1, b"fw1 overlay").unwrap();
    let fw2 = env.path("fw2.apkovl.tar.gz");
    fs::write(&fw2, b"fw2 overlay").unwrap();
    let own = env.path("52:54:00:00:00:03.apkovl.tar.gz");
    fs::write(&own, b"own overlay").unwrap();
    fs::write(env.path("52:54:00:00:00:03.apkovl.tar.gz.sig"), b"own sig").unwrap();
    let hosts = env.path("hosts");
    fs::write(
        &hosts,
        "# MAC -> host\n52:54:00:00:00:01 fw1\n52-54-00-00-00-02  fw2   # branch office\n\n52:54:00:00:00:0A fw1\n",
    )
    .unwrap();
    Fleet {
        fw1,
        fw2,
        own,
        hosts,
        ovl_key,
        ovl_keys,
        initramfs,
    }
}

impl Env {
    /// [`Env::base`] for a netboot tree of `fleet`: its initramfs trusts the overlay key.
    fn netboot(&self, out: &Path, fleet: &Fleet) -> Command {
        let mut c = self.base("netboot", out);
        c.arg("--sign-key")
            .arg(&self.key)
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--initramfs")
            .arg(&fleet.initramfs);
        c
    }
}

/// `--format netboot`: the tree a web server serves (kernel, initramfs, signed repository,
/// signed modloop, one overlay per MAC signed for that MAC, boot.ipxe), no boot loaders, and the
/// same bytes twice.
#[test]
fn netboot_tree_serves_a_fleet() {
    let env = Env::new();
    let f = fleet(&env);
    let modloop = small_modloop(&env, "built-modloop", "6.6.7-0-lts");
    let build = |out: &Path| {
        let mut c = env.netboot(out, &f);
        c.arg("--modloop")
            .arg(&modloop)
            .arg("--hosts")
            .arg(&f.hosts)
            .arg("--ovl-key")
            .arg(&f.ovl_key)
            .args(["--netboot-url", "http://10.0.0.1:8080/fleet/"])
            .args(["--cmdline", "console=ttyS0 quiet"]);
        for o in [&f.fw1, &f.fw2, &f.own] {
            c.arg("--apkovl").arg(o);
        }
        stdout(&mut c)
    };
    let out = env.path("tree");
    let log = build(&out);
    assert!(
        log.contains(&format!("Writing directory {}", out.display())),
        "{log}"
    );
    let mut top: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [
            ".alpine-release",
            "52:54:00:00:00:01.apkovl.tar.gz",
            "52:54:00:00:00:01.apkovl.tar.gz.sig",
            "52:54:00:00:00:02.apkovl.tar.gz",
            "52:54:00:00:00:02.apkovl.tar.gz.sig",
            "52:54:00:00:00:03.apkovl.tar.gz",
            "52:54:00:00:00:03.apkovl.tar.gz.sig",
            "52:54:00:00:00:0a.apkovl.tar.gz",
            "52:54:00:00:00:0a.apkovl.tar.gz.sig",
            "apks",
            "boot",
            "boot.ipxe",
        ]
    );
    let mut boot: Vec<String> = fs::read_dir(out.join("boot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    boot.sort();
    assert_eq!(
        boot,
        ["initramfs", "modloop-lts", "modloop-lts.sig", "vmlinuz"]
    );
    assert_eq!(
        fs::read(out.join("boot/vmlinuz")).unwrap(),
        fs::read(&env.kernel).unwrap()
    );
    assert_eq!(
        fs::read(out.join("boot/initramfs")).unwrap(),
        fs::read(&f.initramfs).unwrap()
    );
    check_modloop_signature(
        &env,
        &out,
        "modloop-lts",
        "6.6.7-0-lts",
        &fs::read(&modloop).unwrap(),
    );
    check_repository(&out.join("apks/x86_64"), &ALPINE_BASE, &env);
    assert!(!out.join("apks/.boot_repository").exists());
    // Each host's overlay, signed for the MAC that boots it (the init's apkovl=URL check).
    for (mac, bytes) in [
        ("52:54:00:00:00:01", &b"fw1 overlay"[..]),
        ("52:54:00:00:00:02", b"fw2 overlay"),
        ("52:54:00:00:00:0a", b"fw1 overlay"),
        // A machine's own overlay: signed for it too (--ovl-key given).
        ("52:54:00:00:00:03", b"own overlay"),
    ] {
        let ovl = fs::read(out.join(format!("{mac}.apkovl.tar.gz"))).unwrap();
        assert_eq!(ovl, bytes);
        let sig = fs::read(out.join(format!("{mac}.apkovl.tar.gz.sig"))).unwrap();
        let v = overlays::verify(&ovl, Some(&sig), &f.ovl_keys);
        assert!(
            matches!(v, overlays::Verification::Verified { .. }),
            "{mac}: {v:?}"
        );
        overlays::check_binding(&v, mac, None, false).unwrap();
        assert!(overlays::check_binding(&v, "52:54:00:00:00:09", None, false).is_err());
    }
    let script = fs::read_to_string(out.join("boot.ipxe")).unwrap();
    assert_eq!(
        script,
        format!(
            "#!ipxe\n\
             # {release}: written by mkimage --format netboot.\n\
             # ${{base}} is the URL this tree is served from, unless set before this script runs.\n\
             isset ${{base}} || set base http://10.0.0.1:8080/fleet\n\
             echo Booting {release} from ${{base}}\n\
             kernel ${{base}}/boot/vmlinuz initrd=initramfs ip=dhcp BOOTIF=01-${{netX/mac:hexhyp}} \
             alpine_repo=${{base}}/apks modloop=${{base}}/boot/modloop-lts \
             apkovl=${{base}}/{{MAC}}.apkovl.tar.gz console=ttyS0 quiet\n\
             initrd --name initramfs ${{base}}/boot/initramfs\n\
             boot\n",
            release = fs::read_to_string(out.join(".alpine-release"))
                .unwrap()
                .trim()
        )
    );
    // Without --ovl-key a machine's own overlay goes as it is, with its signature; the
    // initramfs of Env holds no network driver: said, not refused.
    let plain = env.path("tree3");
    let warned = run(env
        .alpine_base("netboot", &plain)
        .arg("--apkovl")
        .arg(&f.own))
    .stderr;
    let warned = String::from_utf8(warned).unwrap();
    assert!(warned.contains("holds no network card driver"), "{warned}");
    assert_eq!(
        fs::read(plain.join("52:54:00:00:00:03.apkovl.tar.gz.sig")).unwrap(),
        b"own sig"
    );
    assert!(fs::read_to_string(plain.join("boot.ipxe"))
        .unwrap()
        .contains("set base http://${next-server}\n"));
    // Reproducible: a second build is the same bytes.
    let again = env.path("tree2");
    build(&again);
    assert_eq!(tree_hashes(&out), tree_hashes(&again));
    assert_eq!(snapshot(&out), snapshot(&again));
    assert!(!env.path("tree.tmp").exists());
}

/// Bad fleets: one line naming the file and line (or option), and no tree.
#[test]
fn netboot_refusals_are_one_line_errors() {
    let env = Env::new();
    let f = fleet(&env);
    let out = env.path("tree");
    let with_hosts = |text: &str, key: bool| -> String {
        let hosts = env.path("hosts-bad");
        fs::write(&hosts, text).unwrap();
        let mut c = env.netboot(&out, &f);
        c.arg("--hosts").arg(&hosts);
        if key {
            c.arg("--ovl-key").arg(&f.ovl_key);
        }
        c.arg("--apkovl").arg(&f.fw1);
        failure(&mut c)
    };
    let hosts = env.path("hosts-bad");
    let h = hosts.display();
    assert_eq!(
        with_hosts("52:54:00:00:01 fw1\n", true),
        format!("mkimage: ERROR: --hosts {h}: line 1: \"52:54:00:00:01\" is not a MAC address (aa:bb:cc:dd:ee:ff)\n")
    );
    assert_eq!(
        with_hosts("# x\n52:54:00:00:00:01 fw1\n52:54:00:00:00:01 fw1\n", true),
        format!("mkimage: ERROR: --hosts {h}: line 3: 52:54:00:00:00:01 is listed twice (first on line 2)\n")
    );
    assert_eq!(
        with_hosts("52:54:00:00:00:01 fw_1\n", true),
        format!("mkimage: ERROR: --hosts {h}: line 1: host name \"fw_1\": use letters, digits, '-' and '.' only\n")
    );
    assert_eq!(
        with_hosts("52:54:00:00:00:01 fw1\n", false),
        format!("mkimage: ERROR: --hosts {h}: needs --ovl-key: each host's overlay is signed for its MAC (the init checks the host in the signed statement)\n")
    );
    assert_eq!(
        with_hosts("52:54:00:00:00:01 fw1\n52:54:00:00:00:02 fw2\n", true),
        format!("mkimage: ERROR: --hosts {h}: line 2: 52:54:00:00:00:02 fw2: no --apkovl fw2.apkovl.tar.gz given\n")
    );
    // --ovl-key with an initramfs that does not trust it: the init would check no signature.
    let e = failure(
        env.alpine_base("netboot", &out)
            .arg("--hosts")
            .arg(&f.hosts)
            .arg("--ovl-key")
            .arg(&f.ovl_key)
            .arg("--apkovl")
            .arg(&f.fw1)
            .arg("--apkovl")
            .arg(&f.fw2),
    );
    assert_eq!(
        e,
        format!(
            "mkimage: ERROR: --initramfs {}: has no etc/apkovl/keys/fleet.key.pub: the init would check no overlay signature and boot any overlay it is served (mkinitfs --ovl-keys-dir DIR, with fleet.key.pub in DIR)\n",
            env.initramfs.display()
        )
    );
    // The overlay identity in a tree anyone on the network can read.
    let id_file = env.path("overlay.identity");
    let id = age::x25519::Identity::generate();
    fs::write(
        &id_file,
        format!(
            "{}\n",
            age::secrecy::ExposeSecret::expose_secret(&id.to_string())
        ),
    )
    .unwrap();
    let with_id = env.path("initramfs-with-identity");
    initramfs_with(&env.path("init-program"), Some(&id_file), &with_id);
    let e = failure(
        env.base("netboot", &out)
            .arg("--sign-key")
            .arg(&env.key)
            .arg("--kernel")
            .arg(&env.kernel)
            .arg("--initramfs")
            .arg(&with_id)
            .arg("--apkovl")
            .arg(&f.fw1),
    );
    assert_eq!(
        e,
        format!(
            "mkimage: ERROR: --initramfs {}: holds the age identity etc/apkovl/identity: a netboot tree is readable by whoever reaches the server, so the identity would decrypt the overlays for anyone (build the netboot initramfs without --ovl-identity)\n",
            with_id.display()
        )
    );
    // A web server's directory that mkimage did not write is not replaced (nor emptied).
    let www = env.path("htdocs");
    fs::create_dir(&www).unwrap();
    fs::write(www.join("index.html"), b"<html>").unwrap();
    let e = failure(env.alpine_base("netboot", &www).arg("--apkovl").arg(&f.own));
    assert_eq!(
        e,
        format!(
            "mkimage: ERROR: -o {}: exists, is not empty and holds no .alpine-release: not a tree mkimage wrote, so it is not replaced (remove it or choose a new directory)\n",
            www.display()
        )
    );
    assert_eq!(fs::read(www.join("index.html")).unwrap(), b"<html>");
    assert_eq!(fs::read_dir(&www).unwrap().count(), 1);
    // Words that iPXE would split, expand or take as a comment in boot.ipxe.
    let spaced = env.path("a #.apkovl.tar.gz");
    fs::write(&spaced, b"x").unwrap();
    let e = failure(
        env.alpine_base("netboot", &out)
            .arg("--apkovl")
            .arg(&spaced),
    );
    assert_eq!(
        e,
        format!(
            "mkimage: ERROR: --apkovl {}: its name goes into boot.ipxe: \"a #.apkovl.tar.gz\" holds ' ': use letters, digits and ._-+:@,~= only\n",
            spaced.display()
        )
    );
    let e = failure(
        env.alpine_base("netboot", &out)
            .args(["--cmdline", "quiet #console=ttyS0"]),
    );
    assert_eq!(
        e,
        "mkimage: ERROR: --cmdline: netboot: \"#console=ttyS0\": iPXE would take a word starting with '#' and the rest of the line as a comment\n"
    );
    // Two overlays and no hosts: which machine boots which?
    let e = failure(
        env.alpine_base("netboot", &out)
            .arg("--apkovl")
            .arg(&f.fw1)
            .arg("--apkovl")
            .arg(&f.fw2),
    );
    assert!(
        e.contains("several overlays for no MAC: give --hosts FILE"),
        "{e}"
    );
    // A MAC overlay not in the init's {MAC} form.
    let upper = env.path("52-54-00-00-00-0B.apkovl.tar.gz");
    fs::write(&upper, b"x").unwrap();
    let e = failure(env.alpine_base("netboot", &out).arg("--apkovl").arg(&upper));
    assert!(
        e.contains("name it 52:54:00:00:00:0b.apkovl.tar.gz (lower case, colons)"),
        "{e}"
    );
    // Netboot options on a medium, and what a tree needs.
    let e = failure(env.alpine_base("dir", &out).arg("--hosts").arg(&f.hosts));
    assert_eq!(
        e,
        "mkimage: ERROR: --hosts: only with --format netboot (not dir)\n"
    );
    let e = failure(env.base("netboot", &out).arg("--sign-key").arg(&env.key));
    assert!(e.contains("netboot: needs --kernel and --initramfs"), "{e}");
    let e = failure(
        env.alpine_base("netboot", &out)
            .args(["--netboot-url", "tftp://10.0.0.1/"]),
    );
    assert!(
        e.contains("--netboot-url: \"tftp://10.0.0.1/\": must start with http:// or https://"),
        "{e}"
    );
    assert!(!out.exists());
    assert!(!env.path("tree.tmp").exists());
}
