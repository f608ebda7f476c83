//! Boot assets built with the project's binaries and cached under a hash of their recipe:
//! signing keys, initramfs images (`mkinitfs`), boot media (`mkimage`).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Where things are.
#[derive(Debug)]
pub struct Env {
    /// `out/` of the build (binaries in `bin/`, the project repository in `repo/`, keys in `keys/`).
    pub out: PathBuf,
    /// `../shared` (fixtures).
    pub shared: PathBuf,
    /// The asset cache.
    pub assets: PathBuf,
    /// Kernel version (`/lib/modules/<kver>`).
    pub kver: String,
    /// `/boot/vmlinuz-<kver>`.
    pub kernel: PathBuf,
}

/// Serializes asset builds between test threads.
/// Subtrees left out of the test modloops (`mkimage --modloop-exclude`, a small image): everything
/// but what the scenarios load (netfilter, 802.1Q, bridge, WireGuard and its crypto, e1000) and
/// their dependencies.
pub const TEST_MODLOOP_EXCLUDES: &[&str] = &[
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

static BUILD: Mutex<()> = Mutex::new(());

/// Runs `cmd`; panics with its output when it fails. Returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hash_file(h: &mut Sha256, p: &Path) {
    h.update(p.to_string_lossy().as_bytes());
    h.update(std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
}

impl Env {
    /// The environment (checked once).
    pub fn get() -> &'static Env {
        static ENV: OnceLock<Env> = OnceLock::new();
        ENV.get_or_init(|| {
            let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace")
                .to_path_buf();
            let out = std::env::var_os("PROJECT_OUT")
                .map(PathBuf::from)
                .unwrap_or_else(|| ws.join("out"));
            let shared = std::env::var_os("SHARED_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| ws.join("../shared"));
            for b in ["apk", "init", "mkinitfs", "mkimage", "lbu"] {
                assert!(
                    out.join("bin").join(b).is_file(),
                    "{}/bin/{b} is missing: run `make` first (make test does)",
                    out.display()
                );
            }
            let kernel = crate::Kernel::host();
            let assets = out.join("qemu-assets");
            std::fs::create_dir_all(&assets).expect("asset dir");
            Env {
                kernel: kernel.image.clone(),
                out,
                shared,
                assets,
                kver: kernel.kver.clone(),
            }
        })
    }

    /// A binary of the build.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.out.join("bin").join(name)
    }

    /// The Alpine 3.19.1 fixture repository.
    pub fn alpine_repo(&self) -> PathBuf {
        self.shared.join("fixtures/alpine-3.19.1/apks")
    }

    /// Alpine's public keys (from the minirootfs fixture).
    pub fn alpine_keys(&self) -> PathBuf {
        let dir = self.assets.join("alpine-keys");
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if !dir.join("etc/apk/keys").is_dir() {
            std::fs::create_dir_all(&dir).unwrap();
            run(Command::new("tar")
                .arg("xzf")
                .arg(
                    self.shared
                        .join("fixtures/alpine-minirootfs-3.20.3-x86_64.tar.gz"),
                )
                .arg("-C")
                .arg(&dir)
                .arg("./etc/apk/keys"));
        }
        dir.join("etc/apk/keys")
    }

    /// The test signing keys: `(medium index key, its public keys dir, overlay key, its public
    /// keys dir)`. The public dirs are what the initramfs embeds.
    pub fn keys(&self) -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let dir = self.assets.join("keys");
            let k = Keys {
                index_key: dir.join("medium-test"),
                index_pub: dir.join("index-pub"),
                overlay_key: dir.join("overlay-test"),
                overlay_pub: dir.join("overlay-pub"),
            };
            if !k.overlay_pub.join("overlay-test.pub").is_file() {
                std::fs::create_dir_all(&k.index_pub).unwrap();
                std::fs::create_dir_all(&k.overlay_pub).unwrap();
                // The medium index is signed with RSA so that the stock apk-tools of the booted
                // Alpine system trusts it too (it knows no ed25519); overlays use ed25519.
                run(Command::new(self.bin("apk"))
                    .args(["keygen", "--rsa", "2048", "-o"])
                    .arg(&k.index_key));
                run(Command::new(self.bin("apk"))
                    .arg("keygen")
                    .arg("-o")
                    .arg(&k.overlay_key));
                std::fs::copy(
                    dir.join("medium-test.pub"),
                    k.index_pub.join("medium-test.pub"),
                )
                .unwrap();
                std::fs::copy(
                    dir.join("overlay-test.pub"),
                    k.overlay_pub.join("overlay-test.pub"),
                )
                .unwrap();
            }
            k
        })
    }

    /// Build (or reuse) an initramfs.
    pub fn initramfs(&self, r: &InitramfsRecipe) -> PathBuf {
        let keys = self.keys();
        let mut h = Sha256::new();
        h.update(format!("{r:?}{}", self.kver).as_bytes());
        hash_file(&mut h, &self.bin("init"));
        hash_file(&mut h, &self.bin("mkinitfs"));
        hash_file(&mut h, &keys.index_pub.join("medium-test.pub"));
        hash_file(&mut h, &keys.overlay_pub.join("overlay-test.pub"));
        if let Some(ca) = &r.ca {
            hash_file(&mut h, ca);
        }
        let out = self
            .assets
            .join(format!("initramfs-{}", &hex::encode(h.finalize())[..16]));
        let alpine_keys = self.alpine_keys();
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if !out.is_file() {
            let mut cmd = Command::new(self.bin("mkinitfs"));
            // The init hashed above, wherever mkinitfs lives (a PROJECT_OUT may link it).
            cmd.arg("-q")
                .arg("-i")
                .arg(self.bin("init"))
                .arg("--keys-dir")
                .arg(&keys.index_pub);
            if !r.features.is_empty() {
                cmd.arg("-F").arg(&r.features);
            }
            if r.alpine_keys {
                // Alpine's own keys too, as Alpine's initramfs has them: indexes Alpine signed
                // (in the medium's cache) stay trusted at boot.
                cmd.arg("--keys-dir").arg(&alpine_keys);
            }
            if r.overlay_keys {
                cmd.arg("--ovl-keys-dir").arg(&keys.overlay_pub);
            }
            if let Some(ca) = &r.ca {
                cmd.arg("--ca").arg(ca);
            }
            // Always a config file of ours: never the build host's /etc/mkinitfs/mkinitfs.conf
            // (an Alpine host's would change the features and the compression).
            let (conf, text) = match r.zstd_level {
                Some(level) => (
                    self.assets.join(format!("mkinitfs-zstd{level}.conf")),
                    format!("complevel_zstd=\"{level}\"\n"),
                ),
                None => (self.assets.join("mkinitfs-defaults.conf"), String::new()),
            };
            std::fs::write(&conf, text).expect("mkinitfs config");
            cmd.arg("-c").arg(conf);
            cmd.arg("-o")
                .arg(&out)
                .arg(&self.kver)
                .env("SOURCE_DATE_EPOCH", "1700000000");
            run(&mut cmd);
        }
        out
    }

    /// Build (or reuse) a medium.
    pub fn medium(&self, r: &MediumRecipe) -> PathBuf {
        self.medium_with(r, &[])
    }

    /// [`Env::medium`] with extra `mkimage` arguments (part of the cache key), e.g. the modloop's
    /// `--modloop-kver`, `--modloop-exclude`.
    pub fn medium_with(&self, r: &MediumRecipe, extra: &[String]) -> PathBuf {
        let keys = self.keys();
        let alpine_keys = self.alpine_keys();
        let mut h = Sha256::new();
        h.update(
            format!(
                "{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}",
                r.format, r.world, r.label, r.cmdline, r.project_repo, r.world_extra, r.uki
            )
            .as_bytes(),
        );
        for a in extra {
            h.update(format!("|{a}").as_bytes());
        }
        hash_file(&mut h, &self.bin("mkimage"));
        hash_file(&mut h, &r.initramfs);
        if r.project_repo {
            hash_file(&mut h, &self.out.join("repo/x86_64/APKINDEX.tar.gz"));
        }
        if let Some((name, bytes, sig)) = &r.overlay {
            h.update(name.as_bytes());
            h.update(bytes);
            h.update(sig.as_deref().unwrap_or("").as_bytes());
        }
        let id = &hex::encode(h.finalize())[..16];
        let ext = match r.format {
            MediumFormat::Vfat => "img",
            MediumFormat::Iso => "iso",
        };
        let out = self.assets.join(format!("medium-{id}.{ext}"));
        // Before the lock (it takes it too).
        let sb_key = (r.uki == UkiRecipe::Snakeoil).then(|| self.snakeoil_key());
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if out.is_file() {
            return out;
        }
        let stage = self.assets.join(format!("stage-{id}"));
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir_all(&stage).unwrap();
        let mut cmd = Command::new(self.bin("mkimage"));
        cmd.arg("-q")
            .arg("-o")
            .arg(&out)
            .arg("--format")
            .arg(match r.format {
                MediumFormat::Vfat => "vfat",
                MediumFormat::Iso => "iso",
            })
            .arg("--repository")
            .arg(self.alpine_repo())
            .arg("--keys-dir")
            .arg(&alpine_keys)
            .arg("--world")
            .arg(r.world.join(" "))
            .arg("--kernel")
            .arg(&self.kernel)
            .arg("--initramfs")
            .arg(&r.initramfs)
            .arg("--sign-key")
            .arg(&keys.index_key)
            .arg("--label")
            .arg(&r.label)
            .arg("--cmdline")
            .arg(&r.cmdline)
            .env("SOURCE_DATE_EPOCH", "1700000000");
        if r.project_repo {
            // out/keys holds the build key's private half too, and a keys directory may hold
            // public keys only (mkimage refuses it otherwise): the public half goes alone.
            let project_keys = self.assets.join("project-keys");
            std::fs::create_dir_all(&project_keys).unwrap();
            std::fs::copy(
                self.out.join("keys/project-build.rsa.pub"),
                project_keys.join("project-build.rsa.pub"),
            )
            .unwrap();
            cmd.arg("--repository")
                .arg(self.out.join("repo"))
                .arg("--keys-dir")
                .arg(&project_keys);
        }
        match r.uki {
            UkiRecipe::None => {}
            UkiRecipe::Unsigned => {
                cmd.arg("--uki");
            }
            UkiRecipe::Snakeoil => {
                cmd.arg("--uki")
                    .arg("--sb-key")
                    .arg(sb_key.as_ref().expect("the key"))
                    .arg("--sb-cert")
                    .arg(SNAKEOIL_CERT);
            }
        }
        if !r.world_extra.is_empty() {
            cmd.arg("--extra-repository")
                .arg(self.alpine_repo())
                .arg("--world-extra")
                .arg(r.world_extra.join(" "));
        }
        if let Some((name, bytes, sig)) = &r.overlay {
            let f = stage.join(name);
            std::fs::write(&f, bytes).unwrap();
            if let Some(s) = sig {
                std::fs::write(stage.join(format!("{name}.sig")), s).unwrap();
            }
            cmd.arg("--apkovl").arg(&f);
        }
        cmd.args(extra);
        run(&mut cmd);
        let _ = std::fs::remove_dir_all(&stage);
        out
    }

    /// The private half of Debian's Secure Boot test key (`PkKek-1-snakeoil`, enrolled in
    /// PK/KEK/db of `OVMF_VARS_4M.snakeoil.fd`), without its passphrase (`snakeoil`) so that
    /// sbsign reads it without a prompt. A TEST key, published by Debian for exactly this: kept
    /// with the test assets, never a default anywhere.
    pub fn snakeoil_key(&self) -> PathBuf {
        let out = self.assets.join("keys/sb-snakeoil.key");
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if !out.is_file() {
            std::fs::create_dir_all(out.parent().expect("keys dir")).unwrap();
            let tmp = out.with_extension("tmp");
            run(Command::new("openssl")
                .args([
                    "rsa",
                    "-in",
                    SNAKEOIL_KEY,
                    "-passin",
                    "pass:snakeoil",
                    "-out",
                ])
                .arg(&tmp));
            std::fs::rename(&tmp, &out).unwrap();
        }
        out
    }

    /// `initramfs` with `files` added (`(path, bytes, mode)`, paths relative to the root): an
    /// uncompressed newc archive appended after it, which the kernel unpacks after the first one,
    /// so the files are added or replace what the image holds. For what mkinitfs would not
    /// write (a malformed policy file) or before it can. Cached like the other assets.
    pub fn initramfs_with(&self, initramfs: &Path, files: &[(&str, &[u8], u32)]) -> PathBuf {
        let mut h = Sha256::new();
        hash_file(&mut h, initramfs);
        for (path, data, mode) in files {
            h.update(format!("{path}|{mode:o}|{}|", data.len()).as_bytes());
            h.update(data);
        }
        let out = self.assets.join(format!(
            "initramfs-plus-{}",
            &hex::encode(h.finalize())[..16]
        ));
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if out.is_file() {
            return out;
        }
        let stage = tempfile::tempdir_in(&self.assets).expect("staging directory");
        let mut names = Vec::new();
        for (path, data, mode) in files {
            let p = stage.path().join(path);
            let parent = p.parent().expect("a relative path");
            std::fs::create_dir_all(parent).unwrap();
            std::fs::write(&p, data).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(*mode))
                .unwrap();
            // Parents first, as the kernel does not create missing directories.
            let mut anc: Vec<String> = Path::new(path)
                .ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .map(|a| a.display().to_string())
                .collect();
            anc.reverse();
            for a in anc {
                if !names.contains(&a) {
                    names.push(a);
                }
            }
            names.push(path.to_string());
        }
        let list = stage.path().join(".list");
        std::fs::write(&list, names.join("\n") + "\n").unwrap();
        let cpio = stage.path().join(".cpio");
        run(Command::new("sh").arg("-c").arg(format!(
            "cd '{}' && cpio -o -H newc -R 0:0 --quiet < .list > .cpio",
            stage.path().display()
        )));
        let mut bytes = std::fs::read(initramfs).unwrap();
        // Archives start on a 4-byte boundary.
        while !bytes.len().is_multiple_of(4) {
            bytes.push(0);
        }
        bytes.extend(std::fs::read(&cpio).unwrap());
        let tmp = out.with_extension("tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &out).unwrap();
        out
    }

    /// A private copy of a medium for a VM that writes to it.
    pub fn copy_medium(&self, medium: &Path, name: &str) -> PathBuf {
        let dst = self.assets.join(format!(
            "run-{name}-{}",
            medium.file_name().unwrap().to_string_lossy()
        ));
        std::fs::copy(medium, &dst).unwrap();
        dst
    }

    /// The test age identity (`AGE-SECRET-KEY-1...` text, what `mkinitfs --ovl-identity` embeds)
    /// and its recipient (`age1...`, what lbu's `AGE_RECIPIENTS` names). Made once and kept
    /// with the assets, so the images that embed it stay cached.
    pub fn age_identity(&self) -> (String, String) {
        let path = self.assets.join("keys/age-identity.txt");
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => {
                use age::secrecy::ExposeSecret;
                let id = age::x25519::Identity::generate();
                let text = format!("{}\n", id.to_string().expose_secret());
                std::fs::create_dir_all(path.parent().expect("keys dir")).unwrap();
                std::fs::write(&path, &text).unwrap();
                text
            }
        };
        let id: age::x25519::Identity = text.trim().parse().expect("the stored age identity");
        (text, id.to_public().to_string())
    }

    /// Sign the overlay that will be stored as `file_name` (`HOST.apkovl.tar.gz[...]`) with the
    /// test overlay key, as `lbu commit` does for its first commit: a statement for the host the
    /// name gives, generation 1. Returns the `.sig` text.
    pub fn sign_overlay(&self, bytes: &[u8], file_name: &str) -> String {
        let host = overlays::host_of(file_name).expect("an overlay file name");
        self.sign_statement(bytes, host, 1)
    }

    /// A signed statement for `host` at `generation` (commit time fixed, as the assets are
    /// cached by content).
    pub fn sign_statement(&self, bytes: &[u8], host: &str, generation: u64) -> String {
        let key = self.overlay_key();
        overlays::sign_statement(
            bytes,
            host,
            1_700_000_000 + generation,
            generation,
            &key,
            "overlay-test.pub",
        )
        .expect("signing")
    }

    /// A round-1 signature (the bytes only), which images accept only with
    /// `mkinitfs --ovl-legacy-sig`.
    pub fn sign_legacy(&self, bytes: &[u8]) -> String {
        overlays::sign(bytes, &self.overlay_key(), "overlay-test.pub").expect("signing")
    }

    fn overlay_key(&self) -> apk::trust::PrivateKey {
        apk::trust::PrivateKey::load(&self.keys().overlay_key).expect("overlay key")
    }
}

/// The test signing keys.
#[derive(Debug)]
pub struct Keys {
    /// Private key signing media indexes (RSA, so stock apk-tools can verify it).
    pub index_key: PathBuf,
    /// Directory with its public key, named as the signatures name it.
    pub index_pub: PathBuf,
    /// Private key signing overlays (ed25519).
    pub overlay_key: PathBuf,
    /// Directory with its public key.
    pub overlay_pub: PathBuf,
}

/// How to build an initramfs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InitramfsRecipe {
    /// `-F` features; empty: mkinitfs's default features (no `-F`).
    pub features: String,
    /// Embed the overlay verification key (then `apkovl_verify` defaults to `required`).
    pub overlay_keys: bool,
    /// Embed Alpine's index keys besides the medium key.
    pub alpine_keys: bool,
    /// `mkinitfs --ca FILE`: a certificate authority for HTTPS boot servers.
    pub ca: Option<PathBuf>,
    /// `complevel_zstd` (a config file); `None`: mkinitfs's default level.
    pub zstd_level: Option<i32>,
}

impl InitramfsRecipe {
    /// What a medium made with mkinitfs's defaults carries: the default features and zstd level;
    /// the medium, overlay and Alpine keys embedded.
    pub fn default_image() -> Self {
        InitramfsRecipe {
            features: String::new(),
            zstd_level: None,
            ..InitramfsRecipe::standard()
        }
    }

    /// The default features plus `network`; the medium, overlay and Alpine keys embedded.
    pub fn standard() -> Self {
        InitramfsRecipe {
            features: "base virtio ata scsi nvme usb mmc cdrom ext4 vfat squashfs network".into(),
            overlay_keys: true,
            alpine_keys: true,
            ca: None,
            // Level 3 builds in 0.15 s, the default (19) in 5 s: the tests' images build fast;
            // media made by mkimage in the tests keep the default.
            zstd_level: Some(3),
        }
    }
}

/// Debian's Secure Boot test key (`ovmf` package), encrypted with the passphrase `snakeoil`.
pub const SNAKEOIL_KEY: &str = "/usr/share/ovmf/PkKek-1-snakeoil.key";
/// Its certificate.
pub const SNAKEOIL_CERT: &str = "/usr/share/ovmf/PkKek-1-snakeoil.pem";

/// How the medium boots on UEFI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UkiRecipe {
    /// GRUB (mkimage's default).
    None,
    /// A unified kernel image, unsigned (`mkimage --uki`).
    Unsigned,
    /// A unified kernel image signed with Debian's snakeoil test key (`--sb-key`, `--sb-cert`).
    Snakeoil,
}

/// Medium image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediumFormat {
    /// FAT32 image (USB stick).
    Vfat,
    /// ISO 9660 (CD-ROM).
    Iso,
}

/// How to build a medium.
#[derive(Clone, Debug)]
pub struct MediumRecipe {
    /// The UEFI boot path: GRUB or a unified kernel image.
    pub uki: UkiRecipe,
    /// Image format.
    pub format: MediumFormat,
    /// World for the boot repository.
    pub world: Vec<String>,
    /// Also take packages from the project's repository (`out/repo`, e.g. `lbu`).
    pub project_repo: bool,
    /// Closure for a second, non-boot repository on the medium (`apks-extra/`).
    pub world_extra: Vec<String>,
    /// Volume label.
    pub label: String,
    /// Command line written to the boot loader configurations.
    pub cmdline: String,
    /// The initramfs to put in `boot/`.
    pub initramfs: PathBuf,
    /// `(file name, bytes, .sig text)` of an overlay at the top level.
    pub overlay: Option<(String, Vec<u8>, Option<String>)>,
}
