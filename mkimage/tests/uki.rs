//! `mkimage --uki [--sb-key KEY --sb-cert CERT]`: the unified kernel image at
//! `EFI/BOOT/BOOTX64.EFI`, read back with goblin (its sections), sbverify (its signature),
//! mtools (the USB image) and the workspace's newc reader (the sealed initramfs). The boots
//! themselves (OVMF in Secure Boot mode) are in qemu-tests/tests/firmware.rs.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bootspec::initramfs::{POLICY, SIGNED_CMDLINE};
use bootspec::medium::{EFI_BOOT_X64, SECURE_BOOT_CERT};
use bootspec::{BootPolicy, OverlayRequirement};

const EPOCH: &str = "1703680496";

fn mkimage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mkimage"));
    c.env("SOURCE_DATE_EPOCH", EPOCH);
    c
}

fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A failing mkimage's stderr; `code` is its exit code.
fn failure(c: &mut Command, code: i32) -> String {
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{c:?}: {out:?}");
    String::from_utf8(out.stderr).unwrap()
}

/// The inputs: a stand-in kernel, an initramfs whose policy requires signed overlays, and a
/// Secure Boot key pair made by openssl (RSA, as firmware wants).
struct Inputs {
    dir: tempfile::TempDir,
    kernel: PathBuf,
    initramfs: PathBuf,
    key: PathBuf,
    cert: PathBuf,
}

impl Inputs {
    fn new() -> Inputs {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("vmlinuz");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        fs::write(&kernel, bytes).unwrap();
        let mut tree = mkinitfs::tree::Tree::new();
        tree.add_bytes("init", b"#!/bin/sh\n".to_vec(), 0o755)
            .unwrap();
        let policy = BootPolicy {
            apkovl_require: OverlayRequirement::SIGNED,
            ..Default::default()
        };
        tree.add_bytes(POLICY, policy.render(), 0o644).unwrap();
        let archive = mkinitfs::cpio::write_tree(&tree, 0, Vec::new(), Path::new("test")).unwrap();
        let initramfs = dir.path().join("initramfs");
        fs::write(&initramfs, archive).unwrap();
        let key = dir.path().join("db.key");
        let cert = dir.path().join("db.crt");
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj"])
            .arg("/CN=mkimage test db")
            .args(["-days", "2", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        Inputs {
            dir,
            kernel,
            initramfs,
            key,
            cert,
        }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// mkimage with the kernel, the initramfs and `--uki`.
    fn uki(&self, format: &str, out: &Path) -> Command {
        let mut c = mkimage();
        c.args(["--format", format, "-q", "--uki", "--keys-dir"])
            .arg(self.dir.path().join("no-keys"))
            .arg("-o")
            .arg(out)
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--initramfs")
            .arg(&self.initramfs)
            .args(["--cmdline", "console=ttyS0 quiet"]);
        fs::create_dir_all(self.dir.path().join("no-keys")).unwrap();
        c
    }

    fn signed(&self, format: &str, out: &Path) -> Command {
        let mut c = self.uki(format, out);
        c.arg("--sb-key")
            .arg(&self.key)
            .arg("--sb-cert")
            .arg(&self.cert);
        c
    }
}

/// The image's sections by name (their content, without the file alignment's padding).
fn sections(efi: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let pe = goblin::pe::PE::parse(efi).expect("a PE image");
    pe.sections
        .iter()
        .map(|s| {
            let start = s.pointer_to_raw_data as usize;
            let len = s.virtual_size.min(s.size_of_raw_data) as usize;
            (
                s.name().unwrap().to_string(),
                efi[start..start + len].to_vec(),
            )
        })
        .collect()
}

/// The files of a plain newc archive.
fn newc_files(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    mkinitfs::cpio::scan(io::BufReader::new(bytes), &mut |h, data| {
        if h.is_file() {
            let mut v = Vec::new();
            data.read_to_end(&mut v)?;
            out.insert(h.path().to_string(), v);
        }
        Ok(())
    })
    .unwrap();
    out
}

fn sbverify(cert: &Path, efi: &Path) -> Output {
    Command::new("sbverify")
        .arg("--cert")
        .arg(cert)
        .arg(efi)
        .output()
        .expect("sbverify (make deps installs sbsigntool)")
}

#[test]
fn the_signed_uki_holds_the_kernel_the_sealed_initramfs_and_the_command_line() {
    let i = Inputs::new();
    let out = i.out("medium");
    run(&mut i.signed("dir", &out));
    let efi_path = out.join(EFI_BOOT_X64);
    let efi = fs::read(&efi_path).unwrap();
    let v = sbverify(&i.cert, &efi_path);
    assert!(v.status.success(), "sbverify: {v:?}");

    let s = sections(&efi);
    let cmdline = "console=ttyS0 quiet modloop=none";
    assert_eq!(s[".cmdline"], cmdline.as_bytes());
    assert_eq!(s[".linux"], fs::read(&i.kernel).unwrap());
    let osrel = String::from_utf8(s[".osrel"].clone()).unwrap();
    assert!(osrel.contains("PRETTY_NAME=\"alpine-diskless-"), "{osrel}");
    // The initramfs unchanged, then the sealing archive on the next 4-byte boundary.
    let initramfs = fs::read(&i.initramfs).unwrap();
    let initrd = &s[".initrd"];
    assert_eq!(&initrd[..initramfs.len()], &initramfs[..]);
    let sealing = newc_files(&initrd[initramfs.len().next_multiple_of(4)..]);
    let policy = BootPolicy::parse(std::str::from_utf8(&sealing[POLICY]).unwrap()).unwrap();
    assert_eq!(
        policy,
        BootPolicy {
            apkovl_require: OverlayRequirement::SIGNED,
            apkovl_legacy_sig: false,
            sealed: true,
            apkovl_host: None,
            apkovl_not_before: None,
        },
        "the image's requirement kept, sealed"
    );
    assert_eq!(sealing[SIGNED_CMDLINE], cmdline.as_bytes());
    // The boot loaders that are not signed still carry the plain initramfs (BIOS, GRUB).
    assert_eq!(fs::read(out.join("boot/initramfs")).unwrap(), initramfs);

    // The certificate as DER for enrollment; the private key nowhere.
    let der = run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&i.cert))
    .stdout;
    assert_eq!(fs::read(out.join(SECURE_BOOT_CERT)).unwrap(), der);
    let key = fs::read(&i.key).unwrap();
    let key_body = &key[40..100];
    for entry in walk(&out) {
        let bytes = fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(key_body.len()).any(|w| w == key_body),
            "{} holds the private key",
            entry.display()
        );
    }

    // The same image in the USB image's FAT volume (not GRUB). sbsign puts the signing time in
    // the signature, so two signed builds differ there only: the sections are compared.
    let img = i.out("medium.img");
    run(&mut i.signed("vfat", &img));
    let copied = i.out("copied.efi");
    run(Command::new("mcopy")
        .arg("-n")
        .arg("-i")
        .arg(format!("{}@@1M", img.display()))
        .arg(format!("::/{EFI_BOOT_X64}"))
        .arg(&copied)
        .env("MTOOLS_SKIP_CHECK", "1"));
    assert!(sbverify(&i.cert, &copied).status.success());
    assert!(
        sections(&fs::read(&copied).unwrap()) == s,
        "the same sections"
    );
}

#[test]
fn the_unsigned_uki_is_reproducible() {
    let i = Inputs::new();
    let (a, b) = (i.out("a"), i.out("b"));
    run(&mut i.uki("dir", &a));
    run(&mut i.uki("dir", &b));
    let efi = fs::read(a.join(EFI_BOOT_X64)).unwrap();
    assert!(
        efi == fs::read(b.join(EFI_BOOT_X64)).unwrap(),
        "bytes differ"
    );
    // The PE time stamp is the build time (SOURCE_DATE_EPOCH), not the clock.
    let pe = goblin::pe::PE::parse(&efi).unwrap();
    assert_eq!(
        pe.header.coff_header.time_date_stamp,
        EPOCH.parse::<u32>().unwrap()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_unsigned_uki_and_the_refused_options() {
    let i = Inputs::new();
    let out = i.out("unsigned");
    run(&mut i.uki("dir", &out));
    let efi = out.join(EFI_BOOT_X64);
    assert!(!sbverify(&i.cert, &efi).status.success(), "no signature");
    assert!(sections(&fs::read(&efi).unwrap()).contains_key(".initrd"));
    assert!(!out.join(SECURE_BOOT_CERT).exists());

    // --sb-key needs --uki and --sb-cert (clap's usage error).
    let bad = i.out("bad");
    let err = failure(
        mkimage()
            .args(["--format", "dir", "-o"])
            .arg(&bad)
            .arg("--sb-key")
            .arg(&i.key)
            .arg("--sb-cert")
            .arg(&i.cert),
        2,
    );
    assert!(err.contains("--uki"), "{err}");
    // --uki needs the initramfs it seals.
    let err = failure(
        mkimage()
            .args(["--format", "dir", "--uki", "-o"])
            .arg(&bad)
            .arg("--kernel")
            .arg(&i.kernel),
        1,
    );
    assert_eq!(
        err,
        "mkimage: ERROR: --uki: needs --kernel and --initramfs (they go inside the image)\n"
    );
    // The two halves swapped.
    let mut c = i.uki("dir", &bad);
    c.arg("--sb-key").arg(&i.cert).arg("--sb-cert").arg(&i.key);
    let err = failure(&mut c, 1);
    assert!(
        err.starts_with(&format!(
            "mkimage: ERROR: --sb-key {}: not a private key",
            i.cert.display()
        )) || err.starts_with(&format!(
            "mkimage: ERROR: --sb-cert {}: a PEM private key",
            i.key.display()
        )),
        "{err}"
    );
    // The key inside a directory the medium carries.
    let cache = i.out("cache");
    fs::create_dir_all(&cache).unwrap();
    fs::copy(&i.key, cache.join("db.key")).unwrap();
    let mut c = i.signed("dir", &bad);
    c.arg("--cache").arg(&cache);
    let err = failure(&mut c, 1);
    assert!(
        err.contains("a PEM private key (PRIVATE KEY): only public keys may go on a medium"),
        "{err}"
    );
    assert!(!bad.exists(), "nothing written");
}
