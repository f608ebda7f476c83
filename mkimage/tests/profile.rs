//! `mkimage --profile DIR` and `--new-profile DIR` end to end: the built binary on the Alpine
//! 3.19.1 fixture repository and the build host's kernel, with profiles made here. Checks the
//! step lines and summary, the overlay (files, modes, owners, host name, statement signature),
//! the initramfs's keys and boot policy, byte-identical rebuilds in every format, and each bad
//! profile's one-line error (exact stderr, exit code 1, nothing at `-o`).
//!
//! The initramfs gets a made-up `init` (`--init`; nothing boots here, the qemu tests do) and only
//! the `base` feature, to keep these builds short.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apk::trust::PrivateKey;

const EPOCH: &str = "1703680496"; // 2023-12-27 12:34:56 UTC

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn mirror() -> PathBuf {
    fixtures().join("alpine-3.19.1/apks")
}

/// A scratch directory with Alpine's keys, the two signing keys and a fake init.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
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
        let keys = dir.path().join("keys");
        fs::create_dir(&keys).unwrap();
        let medium = PrivateKey::generate_rsa(2048).unwrap();
        fs::write(keys.join("medium.rsa"), medium.to_pem().unwrap()).unwrap();
        let ovl = PrivateKey::generate_ed25519();
        fs::write(keys.join("overlay.key"), ovl.to_pem().unwrap()).unwrap();
        fs::write(keys.join("overlay.key.pub"), ovl.public().to_pem()).unwrap();
        fs::write(dir.path().join("init"), b"#!/bin/sh\n# not a real init\n").unwrap();
        Env { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A profile directory `name` with this `profile.toml` and rootfs files `(path, text, mode)`.
    fn profile(&self, name: &str, toml: &str, files: &[(&str, &str, u32)]) -> PathBuf {
        let dir = self.path(name);
        fs::create_dir_all(dir.join("rootfs")).unwrap();
        fs::write(dir.join("profile.toml"), toml).unwrap();
        for (path, text, mode) in files {
            let p = dir.join("rootfs").join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    /// `mkimage --profile DIR -o OUT` with the fixture mirror, Alpine's keys, both signing keys
    /// and the fake init.
    fn build(&self, profile: &Path, out: &Path) -> Command {
        let mut c = mkimage();
        c.arg("--profile")
            .arg(profile)
            .arg("-o")
            .arg(out)
            .arg("--mirror")
            .arg(mirror())
            .arg("--keys-dir")
            .arg(self.path("etc/apk/keys"))
            .arg("--sign-key")
            .arg(self.path("keys/medium.rsa"))
            .arg("--ovl-key")
            .arg(self.path("keys/overlay.key"))
            .arg("--init")
            .arg(self.path("init"));
        c
    }
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

/// A failing mkimage: exit code 1, and its stderr.
fn failure(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{c:?}: {out:?}");
    String::from_utf8(out.stderr).unwrap()
}

/// The minimal profile of the issue: alpine-base, one file in rootfs/etc/, a host name.
const MINIMAL: &str = "world = [\"alpine-base\"]\nhostname = \"minimal\"\nfeatures = [\"base\"]\n";

/// Incompressible bytes (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn host_kernel() -> String {
    let mut found: Vec<String> = fs::read_dir("/lib/modules")
        .expect("/lib/modules (make deps)")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|k| Path::new("/boot").join(format!("vmlinuz-{k}")).is_file())
        .collect();
    found.sort_by(|a, b| apk::version::compare(a, b));
    found
        .pop()
        .expect("a kernel in /boot and /lib/modules (make deps)")
}

/// The members of a gzip tar (name -> (mode, uid, gid, mtime, content)).
fn tar_members(gz: &[u8]) -> BTreeMap<String, (u32, u64, u64, u64, Vec<u8>)> {
    use std::io::Read;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = BTreeMap::new();
    let mut off = 0;
    while off + 512 <= tar.len() && tar[off] != 0 {
        let h = &tar[off..off + 512];
        let field = |a: usize, b: usize| {
            let s: String = h[a..b]
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as char)
                .collect();
            s.trim().to_string()
        };
        let num = |a: usize, b: usize| u64::from_str_radix(&field(a, b), 8).unwrap_or(0);
        let name = field(0, 100);
        let size = num(124, 136) as usize;
        let data = tar[off + 512..off + 512 + size].to_vec();
        out.insert(
            name,
            (
                num(100, 108) as u32,
                num(108, 116),
                num(116, 124),
                num(136, 148),
                data,
            ),
        );
        off += 512 + size.div_ceil(512) * 512;
    }
    out
}

fn tree_hashes(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if m.is_dir() {
                stack.push(p);
                out.insert(rel, (m.mode(), Vec::new()));
            } else {
                out.insert(rel, (m.mode(), fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn new_profile_writes_a_skeleton_once() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("fw");
    let out = run(mkimage().arg("--new-profile").arg(&dir));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "Wrote the profile {0}: edit {0}/profile.toml and {0}/rootfs/, then build it with: mkimage --profile {0} -o OUT\n",
            dir.display()
        )
    );
    assert_eq!(
        fs::read_to_string(dir.join("profile.toml")).unwrap(),
        mkimage::profile::PROFILE_SKELETON
    );
    assert!(dir.join("rootfs/etc/motd").is_file());
    assert!(dir.join("rootfs.owners").is_file());
    let err = failure(mkimage().arg("--new-profile").arg(&dir));
    assert_eq!(
        err,
        format!(
            "mkimage: ERROR: --new-profile {}: already exists (a new profile is written into a new directory)\n",
            dir.display()
        )
    );
    // --profile and --new-profile do not mix; plain-medium options do not mix with --profile.
    let out = mkimage()
        .arg("--profile")
        .arg(&dir)
        .args(["-o", "x", "--world", "busybox"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("the argument '--profile <DIR>' cannot be used with '--world <PKGS>'"));
}

#[test]
fn bad_profiles_are_one_line_errors_and_leave_nothing() {
    let env = Env::new();
    let out = env.path("bad.img");
    let toml = |name: &str, text: &str| {
        let dir = env.profile(name, text, &[]);
        (dir.clone(), format!("{}/profile.toml", dir.display()))
    };

    let (dir, file) = toml(
        "unknown-key",
        "world = [\"alpine-base\"]\n\nwrold = [\"chrony\"]\n",
    );
    assert_eq!(
        failure(&mut env.build(&dir, &out)),
        format!("mkimage: ERROR: {file}:3: unknown key `wrold`, expected one of `world`, `repositories`, `kernel`, `hostname`, `cmdline`, `features`, `modules`, `modloop`, `formats`, `label`, `size`, `signing`, `encryption`, `hosts`\n")
    );

    let (dir, file) = toml("label", "world = [\"alpine-base\"]\nlabel = \"my stick\"\n");
    assert_eq!(
        failure(&mut env.build(&dir, &out)),
        format!("mkimage: ERROR: {file}:2: label: \"my stick\": use letters, digits, '_' and '-' only for vfat\n")
    );
    let (dir, file) = toml(
        "iso-label",
        "world = [\"alpine-base\"]\nformats = [\"iso\"]\nlabel = \"THIS-LABEL-IS-FAR-TOO-LONG-FOR-ISO\"\n",
    );
    assert_eq!(
        failure(&mut env.build(&dir, &out)),
        format!("mkimage: ERROR: {file}:3: label: \"THIS-LABEL-IS-FAR-TOO-LONG-FOR-ISO\" is 34 characters; iso labels hold at most 32\n")
    );

    let (dir, _) = toml(
        "unknown-package",
        "world = [\"alpine-base\", \"no-such-package\"]\nfeatures = [\"base\"]\n",
    );
    assert_eq!(
        failure(&mut env.build(&dir, &out)),
        "mkimage: ERROR: world: unable to select packages:\n  no-such-package (no such package):\n    required by: world[no-such-package]\n"
    );

    let (dir, _) = toml("format", MINIMAL);
    assert_eq!(
        failure(env.build(&dir, &out).args(["--format", "iso"])),
        format!(
            "mkimage: ERROR: --format: iso: the profile is built as vfat only (formats in {}/profile.toml)\n",
            dir.display()
        )
    );

    // Missing keys: the commands that make them.
    let mut c = mkimage();
    c.arg("--profile")
        .arg(&dir)
        .arg("-o")
        .arg(&out)
        .arg("--mirror")
        .arg(mirror());
    assert_eq!(
        failure(&mut c),
        "mkimage: ERROR: --sign-key: required to sign the boot repository's index; make the keys once with `apk keygen --rsa 2048 -o KEYS/medium.rsa` and `apk keygen -o KEYS/overlay.key` and pass --sign-key KEYS/medium.rsa --ovl-key KEYS/overlay.key, or let mkimage make them with --generate-keys KEYS\n"
    );
    c.arg("--sign-key").arg(env.path("keys/medium.rsa"));
    assert_eq!(
        failure(&mut c),
        "mkimage: ERROR: --ovl-key: required to sign the overlay (signing = \"required\" in profile.toml); make the keys once with `apk keygen --rsa 2048 -o KEYS/medium.rsa` and `apk keygen -o KEYS/overlay.key` and pass --sign-key KEYS/medium.rsa --ovl-key KEYS/overlay.key, or let mkimage make them with --generate-keys KEYS\n"
    );

    // A profile that names no repositories needs a mirror.
    let c = env.build(&dir, &out);
    let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
    let mut c = mkimage();
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--mirror" {
            skip = true;
            continue;
        }
        c.arg(a);
    }
    assert_eq!(
        failure(&mut c),
        format!("mkimage: ERROR: --mirror: required: {}/profile.toml names no repositories (e.g. --mirror https://dl-cdn.alpinelinux.org/alpine/v3.19/main)\n", dir.display())
    );

    // A kernel this host does not have.
    let (dir, file) = toml(
        "kernel",
        "world = [\"alpine-base\"]\nkernel = \"0.0.1-none\"\n",
    );
    assert_eq!(
        failure(&mut env.build(&dir, &out)),
        format!("mkimage: ERROR: {file}: kernel \"0.0.1-none\": needs /boot/vmlinuz-0.0.1-none and /lib/modules/0.0.1-none\n")
    );

    // An overlay larger than the init reads.
    let dir = env.profile("big-overlay", MINIMAL, &[]);
    fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
    fs::write(dir.join("rootfs/etc/big"), noise(33 << 20)).unwrap();
    assert_eq!(
        failure(&mut env.build(&dir, &out)),
        format!("mkimage: ERROR: {}/rootfs: the overlay is 34 MiB, the init reads at most 32 MiB: big files belong in packages\n", dir.display())
    );
    assert!(!out.exists());
    assert!(!env.path("bad.img.tmp").exists());
}

#[test]
fn world_that_does_not_fit_size_is_refused() {
    // A package of 60 MiB of incompressible bytes, in a repository signed with the medium key
    // (made by mkimage itself from an unsigned index), in a world that must fit 64M.
    let env = Env::new();
    let payload = env.path("payload/usr/share/noise");
    fs::create_dir_all(&payload).unwrap();
    fs::write(payload.join("noise.bin"), noise(60 << 20)).unwrap();
    let recipe = apk::mkpkg::Recipe {
        info: [
            ("pkgname", "big-noise"),
            ("pkgver", "1.0-r0"),
            ("pkgdesc", "incompressible bytes"),
            ("arch", "x86_64"),
            ("license", "MIT"),
            ("origin", "big-noise"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        dir: Some(env.path("payload")),
        epoch: Some(EPOCH.parse().unwrap()),
        ..Default::default()
    };
    let apk_bytes = apk::mkpkg::build(&recipe, None).unwrap();
    let src = env.path("src/x86_64");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("big-noise-1.0-r0.apk"), &apk_bytes).unwrap();
    let entry = apk::mkpkg::index_entry(&apk_bytes, &apk::trust::Keyring::default(), true).unwrap();
    let index = apk::archive::index_body(&apk::index::write(&[entry]), None, 0);
    fs::write(src.join("APKINDEX.tar.gz"), index).unwrap();
    let repo = env.path("big-repo");
    run(mkimage()
        .args(["--format", "dir", "-o"])
        .arg(&repo)
        .arg("--repository")
        .arg(env.path("src"))
        .arg("--allow-untrusted")
        .args(["--world", "big-noise", "--sign-key"])
        .arg(env.path("keys/medium.rsa")));
    let trusted = env.path("trusted");
    fs::create_dir(&trusted).unwrap();
    let medium = PrivateKey::load(&env.path("keys/medium.rsa")).unwrap();
    fs::write(trusted.join("medium.rsa.pub"), medium.public().to_pem()).unwrap();

    let dir = env.profile(
        "too-big",
        &format!(
            "world = [\"alpine-base\", \"big-noise\"]\nrepositories = [\"{}\", \"{}\"]\nsize = \"64M\"\nfeatures = [\"base\"]\n",
            repo.join("apks").display(),
            mirror().display()
        ),
        &[],
    );
    let out = env.path("too-big.img");
    let err = failure(env.build(&dir, &out).arg("--keys-dir").arg(&trusted));
    let prefix = format!(
        "mkimage: ERROR: {}/profile.toml: size \"64M\": the world and boot files do not fit (they need at least ",
        dir.display()
    );
    assert!(
        err.starts_with(&prefix) && err.ends_with(")\n") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn minimal_profile_builds_a_medium_with_a_signed_overlay() {
    let env = Env::new();
    let dir = env.profile(
        "minimal",
        &format!("{MINIMAL}formats = [\"dir\", \"vfat\"]\n"),
        &[
            ("etc/profile-test.conf", "made by the profile\n", 0o640),
            // A file of a package outside lbu's paths: the overlay does not carry it.
            ("bin/busybox", "not busybox\n", 0o755),
        ],
    );
    fs::write(
        dir.join("rootfs.owners"),
        "etc/profile-test.conf root:wheel\n",
    )
    .unwrap();
    // -o the profile's own directory: refused before any work, the profile left as it is.
    let e = failure(env.build(&dir, &dir).args(["--format", "dir"]));
    assert_eq!(
        e,
        format!(
            "mkimage: ERROR: -o {}: exists, is not empty and holds no .alpine-release: not a tree mkimage wrote, so it is not replaced (remove it or choose a new directory)\n",
            dir.display()
        )
    );
    assert!(dir.join("profile.toml").is_file());
    let out = env.path("minimal-medium");
    let res = run(env
        .build(&dir, &out)
        .args(["--format", "dir"])
        .arg("--cache-dir")
        .arg(env.path("cache")));
    let stdout = String::from_utf8(res.stdout).unwrap();
    let steps: Vec<&str> = stdout.lines().filter(|l| l.starts_with('[')).collect();
    let kver = host_kernel();
    assert_eq!(
        steps,
        [
            "[1/5] Installing alpine-base into a scratch root",
            "[2/5] Applied rootfs/ (4 entries), host name minimal",
            steps[2],
            steps[3],
            &format!("[5/5] Writing the dir medium {}", out.display()),
        ],
        "{stdout}"
    );
    assert!(
        steps[2].starts_with("[3/5] Packaged the overlay minimal.apkovl.tar.gz: ")
            && steps[2].ends_with(" files, signed"),
        "{stdout}"
    );
    assert!(
        steps[3].starts_with(&format!("[4/5] Built the initramfs for {kver} (")),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("{}: dir alpine-diskless-", out.display()))
            && summary.contains(", 25 packages (")
            && summary.contains(" MiB installed), overlay of "),
        "{summary}"
    );
    assert_eq!(
        String::from_utf8(res.stderr).unwrap(),
        "mkimage: WARNING: rootfs/bin/busybox: owned by busybox-1.36.1-r15 and not in the overlay: the package's copy is what boots (add +bin/busybox to rootfs/etc/apk/protected_paths.d/lbu.list to carry it)\n"
    );

    // The medium: boot repository, kernel, initramfs, the overlay and its statement.
    for f in [
        "apks/.boot_repository",
        "apks/x86_64/APKINDEX.tar.gz",
        "boot/vmlinuz",
        "boot/initramfs",
        "minimal.apkovl.tar.gz",
        "minimal.apkovl.tar.gz.sig",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert_eq!(
        fs::read(out.join("boot/vmlinuz")).unwrap(),
        fs::read(format!("/boot/vmlinuz-{kver}")).unwrap()
    );
    let ovl = fs::read(out.join("minimal.apkovl.tar.gz")).unwrap();
    let members = tar_members(&ovl);
    let (mode, uid, gid, mtime, data) = &members["etc/profile-test.conf"];
    assert_eq!(
        (mode & 0o7777, *uid, *gid, *mtime),
        (0o640, 0, 10, EPOCH.parse().unwrap())
    );
    assert_eq!(data, b"made by the profile\n");
    assert_eq!(members["etc/hostname"].4, b"minimal\n");
    assert!(members.contains_key("etc/apk/world"));
    assert!(!members.contains_key("bin/busybox"));
    assert!(members.values().all(|m| m.3 <= EPOCH.parse().unwrap()));
    // No private key anywhere in the overlay.
    assert!(members
        .values()
        .all(|m| !String::from_utf8_lossy(&m.4).contains("PRIVATE KEY")));
    // The statement binds the overlay to its host, signed with the overlay key.
    let sig = fs::read(out.join("minimal.apkovl.tar.gz.sig")).unwrap();
    match overlays::verify(&ovl, Some(&sig), &env.path("keys")) {
        overlays::Verification::Verified {
            key,
            statement: Some(s),
        } => {
            assert_eq!(key, "overlay.key.pub");
            assert_eq!(
                (s.host.as_str(), s.time, s.generation),
                ("minimal", EPOCH.parse().unwrap(), 1)
            );
        }
        other => panic!("{other:?}"),
    }

    // The initramfs: the medium key, the overlay key, the boot policy requiring a signature.
    let listing = mkinitfs_listing(&out.join("boot/initramfs"));
    assert!(
        listing.contains_key("etc/apk/keys/medium.rsa.pub"),
        "{:?}",
        listing.keys()
    );
    assert!(
        listing.contains_key("etc/apkovl/keys/overlay.key.pub"),
        "{:?}",
        listing.keys()
    );
    let policy = String::from_utf8(listing["etc/boot-policy"].clone()).unwrap();
    assert!(policy.contains("apkovl_require=signed"), "{policy}");
}

/// `encryption = "passphrase"`: the overlay goes on the medium as `HOST.apkovl.tar.gz.age`,
/// encrypted to the passphrase of `--ovl-passphrase-file` and signed over its encrypted bytes;
/// the initramfs requires a signed and encrypted overlay; the passphrase is in no file of the
/// medium. Without the file, or with another `encryption`, a one-line error.
#[test]
fn passphrase_encrypted_profile() {
    let env = Env::new();
    let dir = env.profile(
        "sealed",
        &format!("{MINIMAL}formats = [\"dir\"]\nencryption = \"passphrase\"\n"),
        &[("etc/secret.conf", "only with the passphrase\n", 0o600)],
    );
    let out = env.path("sealed-out");
    let err = failure(env.build(&dir, &out).args(["--format", "dir"]));
    assert_eq!(
        err,
        format!(
            "mkimage: ERROR: {}/profile.toml: encryption = \"passphrase\" needs the passphrase the box will ask for at boot: mkimage --ovl-passphrase-file FILE\n",
            dir.display()
        )
    );
    assert!(!out.exists());
    let pass_file = env.path("passphrase");
    fs::write(&pass_file, "correct horse battery\nignored second line\n").unwrap();
    // Group-readable: refused, as lbu refuses its PASSWORD_FILE.
    fs::set_permissions(&pass_file, fs::Permissions::from_mode(0o644)).unwrap();
    let e = failure(
        env.build(&dir, &out)
            .args(["--format", "dir", "--ovl-passphrase-file"])
            .arg(&pass_file),
    );
    assert!(
        e.contains(": mode 0644: group or others may access it (")
            && e.ends_with("mode 0600 or stricter: chmod 600)\n"),
        "{e}"
    );
    fs::set_permissions(&pass_file, fs::Permissions::from_mode(0o600)).unwrap();
    let res = run(env
        .build(&dir, &out)
        .args(["--format", "dir", "--ovl-passphrase-file"])
        .arg(&pass_file));
    let stdout = String::from_utf8(res.stdout).unwrap();
    assert!(
        stdout.contains("Packaged the overlay minimal.apkovl.tar.gz.age: ")
            && stdout.contains(" files, signed, encrypted to the passphrase"),
        "{stdout}"
    );
    assert!(!out.join("minimal.apkovl.tar.gz").exists());
    let enc = fs::read(out.join("minimal.apkovl.tar.gz.age")).unwrap();
    let sig = fs::read(out.join("minimal.apkovl.tar.gz.age.sig")).unwrap();
    assert!(matches!(
        overlays::verify(&enc, Some(&sig), &env.path("keys")),
        overlays::Verification::Verified { statement: Some(ref s), .. } if s.host == "minimal"
    ));
    let kind = overlays::kind::kind_of("minimal.apkovl.tar.gz.age").unwrap();
    let wrong = overlays::crypt::Secret::Passphrase("wrong horse");
    assert!(overlays::crypt::decrypt(&enc, &kind, &wrong).is_err());
    let right = overlays::crypt::Secret::Passphrase("correct horse battery");
    let plain = overlays::crypt::decrypt(&enc, &kind, &right).unwrap();
    let members = tar_members(&plain);
    assert_eq!(members["etc/secret.conf"].4, b"only with the passphrase\n");
    assert_eq!(members["etc/hostname"].4, b"minimal\n");
    let listing = mkinitfs_listing(&out.join("boot/initramfs"));
    let policy = String::from_utf8(listing["etc/boot-policy"].clone()).unwrap();
    assert!(
        policy.contains("apkovl_require=signed,encrypted"),
        "{policy}"
    );
    // The passphrase travels nowhere: not in a file of the medium, not in the initramfs.
    for (_, data) in tree_hashes(&out).values() {
        assert!(!String::from_utf8_lossy(data).contains("correct horse"));
    }
    assert!(listing
        .values()
        .all(|d| !String::from_utf8_lossy(d).contains("correct horse")));

    let bad = env.profile(
        "badenc",
        &format!("{MINIMAL}encryption = \"age1xyz\"\n"),
        &[],
    );
    let err = failure(&mut env.build(&bad, &env.path("badenc-out")));
    assert!(
        err.ends_with(
            ": encryption \"age1xyz\": expected \"none\" (the default) or \"passphrase\" (typed at boot; mkimage --ovl-passphrase-file FILE)\n"
        ),
        "{err}"
    );
}

/// The files of a (compressed) newc initramfs, through mkinitfs's reader.
fn mkinitfs_listing(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let file = std::io::BufReader::new(fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    mkinitfs::cpio::scan(file, &mut |h, data| {
        let mut v = Vec::new();
        data.read_to_end(&mut v)?;
        out.insert(h.name.trim_start_matches("./").to_string(), v);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn generate_keys_makes_them_once_and_says_so() {
    let env = Env::new();
    let dir = env.profile("gen", MINIMAL, &[("etc/x.conf", "x\n", 0o644)]);
    let keys = env.path("new-keys");
    let out = env.path("gen.img");
    let mut c = mkimage();
    c.arg("--profile")
        .arg(&dir)
        .arg("-o")
        .arg(&out)
        .arg("--mirror")
        .arg(mirror())
        .arg("--keys-dir")
        .arg(env.path("etc/apk/keys"))
        .arg("--init")
        .arg(env.path("init"))
        .arg("--generate-keys")
        .arg(&keys)
        .args(["--format", "vfat"]);
    let stdout = String::from_utf8(run(&mut c).stdout).unwrap();
    assert!(stdout.starts_with(&format!(
        "generated the key {0}/medium.rsa and {0}/medium.rsa.pub (keep the private one off the medium and safe)\ngenerated the key {0}/overlay.key and {0}/overlay.key.pub",
        keys.display()
    )), "{stdout}");
    assert_eq!(
        fs::metadata(keys.join("medium.rsa"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let first = fs::read(&out).unwrap();
    let stdout = String::from_utf8(run(&mut c).stdout).unwrap();
    assert!(
        stdout.starts_with(&format!(
            "using the key {}/medium.rsa (made earlier)\n",
            keys.display()
        )),
        "{stdout}"
    );
    // Same keys, same epoch: the same image.
    assert!(fs::read(&out).unwrap() == first, "rebuilt image differs");
}

#[test]
fn profile_builds_are_reproducible_in_every_format() {
    let env = Env::new();
    let dir = env.profile(
        "repro",
        "world = [\"alpine-base\"]\nhostname = \"repro\"\nfeatures = [\"base\"]\nformats = [\"vfat\", \"iso\", \"dir\"]\nlabel = \"REPRO\"\n",
        &[("etc/repro.conf", "same\n", 0o600)],
    );
    for format in ["vfat", "iso", "dir"] {
        let a = env.path(&format!("a.{format}"));
        let b = env.path(&format!("b.{format}"));
        run(env.build(&dir, &a).args(["--format", format]));
        run(env.build(&dir, &b).args(["--format", format]));
        if format == "dir" {
            assert!(tree_hashes(&a) == tree_hashes(&b), "dir trees differ");
        } else {
            assert!(
                fs::read(&a).unwrap() == fs::read(&b).unwrap(),
                "{format} images differ"
            );
        }
    }
}

/// `formats = ["netboot"]` with `[hosts]`: one overlay per MAC, the profile's with the host's own
/// name, signed for the MAC; the initramfs has the network drivers; the same bytes twice.
#[test]
fn netboot_profile_gives_each_host_its_overlay() {
    let env = Env::new();
    let dir = env.profile(
        "fleet",
        "world = [\"alpine-base\"]\nhostname = \"fleet\"\nfeatures = [\"base\"]\nformats = [\"netboot\"]\n\
         [hosts]\n\"52:54:00:12:34:41\" = \"fw1\"\n\"52-54-00-12-34-42\" = \"fw2\"\n",
        &[("etc/fleet.conf", "shared\n", 0o644)],
    );
    let out = env.path("tree");
    let res = run(env
        .build(&dir, &out)
        .args(["--netboot-url", "http://10.0.2.2:8080"]));
    let stdout = String::from_utf8(res.stdout).unwrap();
    assert!(
        stdout.contains("[3/5] Packaged 2 overlays, one per host of [hosts] (the fleet overlay with its own host name): "),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "[5/5] Writing the netboot medium {}",
            out.display()
        )),
        "{stdout}"
    );
    for (mac, host) in [("52:54:00:12:34:41", "fw1"), ("52:54:00:12:34:42", "fw2")] {
        let ovl = fs::read(out.join(format!("{mac}.apkovl.tar.gz"))).unwrap();
        let members = tar_members(&ovl);
        assert_eq!(members["etc/hostname"].4, format!("{host}\n").as_bytes());
        assert_eq!(members["etc/fleet.conf"].4, b"shared\n");
        let sig = fs::read(out.join(format!("{mac}.apkovl.tar.gz.sig"))).unwrap();
        let v = overlays::verify(&ovl, Some(&sig), &env.path("keys"));
        overlays::check_binding(&v, mac, None, false).unwrap();
        assert!(
            matches!(v, overlays::Verification::Verified { .. }),
            "{v:?}"
        );
    }
    assert!(!out.join("fleet.apkovl.tar.gz").exists());
    let script = fs::read_to_string(out.join("boot.ipxe")).unwrap();
    assert!(
        script.contains("isset ${base} || set base http://10.0.2.2:8080\n")
            && script.contains(" apkovl=${base}/{MAC}.apkovl.tar.gz ")
            && script.contains(" alpine_repo=${base}/apks "),
        "{script}"
    );
    let listing = mkinitfs_listing(&out.join("boot/initramfs"));
    assert!(
        listing.keys().any(|k| k.contains("/kernel/drivers/net/")),
        "no network driver: {:?}",
        listing.keys()
    );
    let again = env.path("tree2");
    run(env
        .build(&dir, &again)
        .args(["--netboot-url", "http://10.0.2.2:8080"]));
    assert!(
        tree_hashes(&out) == tree_hashes(&again),
        "netboot trees differ"
    );
    // A fleet boots unattended: no passphrase to type.
    let pass = env.profile(
        "fleet-pass",
        "world = [\"alpine-base\"]\nformats = [\"netboot\"]\nencryption = \"passphrase\"\n",
        &[],
    );
    let e = failure(&mut env.build(&pass, &env.path("tree3")));
    assert!(
        e.contains("profile.toml: encryption = \"passphrase\": not for netboot trees"),
        "{e}"
    );
    assert!(!env.path("tree3").exists());
}
