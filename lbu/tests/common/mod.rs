//! Shared helpers for the lbu CLI tests: a real Alpine root (the minirootfs fixture, installed by
//! apk), the built `lbu` binary run with a clean environment, and overlay checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(name)
}

/// Extract the Alpine minirootfs (14 packages installed by apk) into `dir`.
pub fn minirootfs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("tar")
        .arg("-xzpf")
        .arg(fixture("alpine-minirootfs-3.20.3-x86_64.tar.gz"))
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A test bed: `root/` (Alpine), `media/` (LBU_BACKUPDIR).
pub struct Bed {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub media: PathBuf,
}

/// Install alpine-base from the Alpine 3.19.1 fixture repository into `root` with the project's
/// apk (the library operation behind `apk add`), trusting the keys shipped in the minirootfs.
pub fn alpine_base(root: &Path, scratch: &Path) {
    let keys = scratch.join("alpine-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(fixture("alpine-minirootfs-3.20.3-x86_64.tar.gz"))
        .arg("-C")
        .arg(&keys)
        .args(["--strip-components=4", "./etc/apk/keys"])
        .status()
        .unwrap();
    assert!(st.success());
    let opts = apk::context::Options {
        root: root.to_path_buf(),
        initdb: true,
        no_network: true,
        repositories: vec![fixture("alpine-3.19.1/apks").to_string_lossy().into_owned()],
        keys_dir: Some(keys),
        ..Default::default()
    };
    let quiet = apk::output::Out {
        verbosity: 0,
        ..Default::default()
    };
    let mut ctx = apk::context::Context::open(opts, apk::context::Access::Writable, quiet)
        .expect("opening the root for apk add");
    let report = apk::ops::add(&mut ctx, &["alpine-base".to_string()], &Default::default())
        .expect("apk add alpine-base");
    assert_eq!(report.errors, 0, "apk add alpine-base");
}

impl Bed {
    /// A root with alpine-base installed by the project's apk.
    pub fn alpine_base() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        alpine_base(&root, tmp.path());
        let media = tmp.path().join("media");
        std::fs::create_dir(&media).unwrap();
        Bed { tmp, root, media }
    }

    pub fn new() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        minirootfs(&root);
        let media = tmp.path().join("media");
        std::fs::create_dir(&media).unwrap();
        Bed { tmp, root, media }
    }

    /// `lbu --root ROOT args...` with LBU_BACKUPDIR=media and nothing else from our environment.
    pub fn lbu(&self, args: &[&str]) -> Output {
        self.lbu_env(args, &[])
    }

    pub fn lbu_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = lbu_cmd();
        // In the scratch directory: an aborted process (fault injection) may leave a core file.
        c.current_dir(self.tmp.path())
            .arg("--root")
            .arg(&self.root)
            .env("LBU_BACKUPDIR", &self.media);
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    }

    pub fn conf(&self, text: &str) {
        std::fs::create_dir_all(self.root.join("etc/lbu")).unwrap();
        std::fs::write(self.root.join("etc/lbu/lbu.conf"), text).unwrap();
    }

    pub fn overlay(&self) -> PathBuf {
        self.media
            .join(format!("{}.apkovl.tar.gz", lbu::hostname()))
    }

    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.media)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

pub fn lbu_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lbu"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A complete, valid overlay: decompresses and lists.
pub fn valid_overlay(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (m, _) =
        overlays::read_members(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m.into_iter().map(|m| m.name).collect()
}

pub fn write(root: &Path, rel: &str, s: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

/// Kill a child that never gets where a test waits for it (a regression must fail the test, not
/// hang it). A safety net, not a timing assertion: nothing legitimate takes this long.
pub fn watchdog(pid: u32) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(300));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    });
}

/// An ed25519 signing key for a test bed: `(private key file, directory with its public half)`,
/// the public half named `basename(KEY).pub` as lbu names it in signatures.
pub fn signing_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = apk::trust::PrivateKey::generate_ed25519();
    let keyfile = dir.join(name);
    std::fs::write(&keyfile, key.to_pem().unwrap()).unwrap();
    std::fs::set_permissions(
        &keyfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let keys = dir.join(format!("{name}-keys"));
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join(format!("{name}.pub")), key.public().to_pem()).unwrap();
    (keyfile, keys)
}

/// The statement of a `.sig` that verifies `overlay` with the keys in `keys` (panics otherwise).
pub fn statement(overlay: &Path, keys: &Path) -> overlays::Statement {
    let data = std::fs::read(overlay).unwrap();
    let sig = std::fs::read(format!("{}.sig", overlay.display()))
        .unwrap_or_else(|e| panic!("{}.sig: {e}", overlay.display()));
    match overlays::verify(&data, Some(&sig), keys) {
        overlays::Verification::Verified {
            statement: Some(s), ..
        } => s,
        other => panic!("{}: {other:?}", overlay.display()),
    }
}

/// The overlays on a medium directory (names the boot would consider).
pub fn boot_overlays(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| overlays::kind_of(n).is_some())
        .collect();
    v.sort();
    v
}
