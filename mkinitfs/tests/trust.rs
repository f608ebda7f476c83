//! The built `mkinitfs` binary and the trust material of an image: keys (only public ones get in),
//! the boot policy (`etc/boot-policy`) and the overlay identity (`etc/apkovl/identity`).
//! Images are built without modules (`-n`), so no kernel is needed.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use apk::trust::PrivateKey;

const BIN: &str = env!("CARGO_BIN_EXE_mkinitfs");

fn mkinitfs(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run mkinitfs")
}

/// A scratch directory with an init and `apk keygen -o keys/overlay.key` output (both halves in
/// one directory, as the command writes them).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("init"), b"#!/bin/sh\n").unwrap();
        let keys = dir.path().join("keys");
        fs::create_dir(&keys).unwrap();
        let key = PrivateKey::generate_ed25519();
        fs::write(keys.join("overlay.key"), key.to_pem().unwrap()).unwrap();
        fs::write(keys.join("overlay.key.pub"), key.public().to_pem()).unwrap();
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// `mkinitfs -n -i INIT -b EMPTY [args] -o OUT 0.0-none`.
    fn run(&self, args: &[&str]) -> Output {
        let base = self.path("base");
        fs::create_dir_all(&base).unwrap();
        let mut all = vec![
            "-n".to_string(),
            "-q".into(),
            "-b".into(),
            self.p("base"),
            "-i".into(),
            self.p("init"),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(["-o".into(), self.p("initramfs"), "0.0-none".into()]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        mkinitfs(&refs)
    }

    /// The entries of the written image (zstd, one archive).
    fn entries(&self) -> Vec<mkinitfs::cpio::ParsedEntry> {
        let bytes = fs::read(self.path("initramfs")).unwrap();
        mkinitfs::cpio::parse(&zstd::decode_all(&bytes[..]).unwrap()).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn age_identity() -> String {
    let id = age::x25519::Identity::generate();
    format!(
        "# public key: {}\n{}\n",
        id.to_public(),
        age::secrecy::ExposeSecret::expose_secret(&id.to_string())
    )
}

/// Issue 13 item 1: `apk keygen -o DIR/overlay.key` puts both halves in DIR; giving DIR to
/// --keys-dir or --ovl-keys-dir embedded the private key in the initramfs (and from there on the
/// medium and in every booted system). Now: exit 1, one line naming the file, no image written.
#[test]
fn keys_dir_with_the_private_half_is_refused() {
    for option in ["--keys-dir", "--ovl-keys-dir"] {
        let env = Env::new();
        let out = env.run(&[option, &env.p("keys")]);
        assert_eq!(out.status.code(), Some(1), "{option}: {}", stderr(&out));
        let dest = if option == "--keys-dir" {
            "etc/apk/keys"
        } else {
            "etc/apkovl/keys"
        };
        assert_eq!(
            stderr(&out),
            format!(
                "mkinitfs: ERROR: {}: a PEM private key (PRIVATE KEY): only public keys may enter an \
                 image (it would be /{dest}/overlay.key)\n",
                env.path("keys/overlay.key").display()
            )
        );
        assert!(!env.path("initramfs").exists());
        // The public half alone goes in.
        fs::remove_file(env.path("keys/overlay.key")).unwrap();
        let out = env.run(&[option, &env.p("keys")]);
        assert!(out.status.success(), "{}", stderr(&out));
        let names: Vec<String> = env.entries().into_iter().map(|e| e.name).collect();
        assert!(
            names.contains(&format!("{dest}/overlay.key.pub")),
            "{names:?}"
        );
    }
}

#[test]
fn boot_policy_is_written_from_the_flags() {
    let env = Env::new();
    let out = env.run(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let policy = |env: &Env| {
        let e = env
            .entries()
            .into_iter()
            .find(|e| e.name == "etc/boot-policy")
            .expect("etc/boot-policy");
        assert_eq!(e.mode, 0o100644);
        bootspec::BootPolicy::parse(std::str::from_utf8(&e.data).unwrap()).unwrap()
    };
    assert_eq!(policy(&env), bootspec::BootPolicy::default());

    let out = env.run(&["--ovl-require", "signed,encrypted", "--ovl-legacy-sig"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let p = policy(&env);
    assert_eq!(p.apkovl_require.to_string(), "signed,encrypted");
    assert!(p.apkovl_legacy_sig && !p.sealed);

    // mkinitfs.conf keys, and the command line over them.
    let conf = env.path("mkinitfs.conf");
    fs::write(
        &conf,
        "apkovl_require=\"encrypted\"\napkovl_legacy_sig=yes\n",
    )
    .unwrap();
    let out = env.run(&["-c", &env.p("mkinitfs.conf")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(policy(&env).apkovl_require.to_string(), "encrypted");
    assert!(policy(&env).apkovl_legacy_sig);
    let out = env.run(&["-c", &env.p("mkinitfs.conf"), "--ovl-require", "signed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(policy(&env).apkovl_require.to_string(), "signed");

    // The host pin: the flag over the config key.
    fs::write(&conf, "apkovl_host=fw1\n").unwrap();
    let out = env.run(&["-c", &env.p("mkinitfs.conf")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(policy(&env).apkovl_host.as_deref(), Some("fw1"));
    let out = env.run(&["-c", &env.p("mkinitfs.conf"), "--ovl-host", "fw2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(policy(&env).apkovl_host.as_deref(), Some("fw2"));
    let out = env.run(&["--ovl-host", "../fw2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "invalid value '../fw2' for '--ovl-host <HOST>': expected a host name (letters, digits, '-', '.')"
        ),
        "{}",
        stderr(&out)
    );

    // The signing-time floor: the config key, the flag over it, `now`, and nonsense refused.
    fs::write(&conf, "apkovl_not_before=1700000000\n").unwrap();
    let out = env.run(&["-c", &env.p("mkinitfs.conf")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(policy(&env).apkovl_not_before, Some(1_700_000_000));
    let out = env.run(&[
        "-c",
        &env.p("mkinitfs.conf"),
        "--ovl-not-before",
        "1800000000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(policy(&env).apkovl_not_before, Some(1_800_000_000));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = env.run(&["--ovl-not-before", "now"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let floor = policy(&env).apkovl_not_before.unwrap();
    assert!(
        floor >= before && floor < before + 3600,
        "{floor} vs {before}"
    );
    let out = env.run(&["--ovl-not-before", "yesterday"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"yesterday\" is not a number of seconds since 1970"),
        "{}",
        stderr(&out)
    );

    let out = env.run(&["--ovl-require", "off"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"off\": expected any, signed, encrypted or signed,encrypted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn overlay_identity_is_embedded_0600_and_nothing_else_passes_as_one() {
    let env = Env::new();
    fs::write(env.path("id.txt"), age_identity()).unwrap();
    let out = env.run(&["--ovl-identity", &env.p("id.txt")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = env
        .entries()
        .into_iter()
        .find(|e| e.name == "etc/apkovl/identity")
        .expect("etc/apkovl/identity");
    assert_eq!(e.mode, 0o100600);
    assert_eq!(e.data, fs::read(env.path("id.txt")).unwrap());

    // A signing key given by mistake is not an identity, and is not embedded.
    let out = env.run(&["--ovl-identity", &env.p("keys/overlay.key")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!(
            "mkinitfs: ERROR: {}: --ovl-identity: not an age identity file",
            env.path("keys/overlay.key").display()
        )),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["--ovl-identity", &env.p("missing")]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn help_names_the_trust_options() {
    let out = mkinitfs(&["--help"]);
    // Words as clap wraps them, joined back into one line.
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for opt in [
        "--ovl-require <any|signed|encrypted|signed,encrypted>",
        "--ovl-legacy-sig",
        "--ovl-identity <FILE>",
        "Whoever reads the medium reads the overlay",
        "Only public keys may enter the image",
    ] {
        assert!(text.contains(opt), "{opt} missing from --help:\n{text}");
    }
}
