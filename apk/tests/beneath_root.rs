//! Paths of the target root are resolved beneath it, never on the host (issue 13 item 10), and
//! package files are read against the size their index gives (item 12). Each test plants a symlink
//! in the root that points at a host directory, as an attacker who writes the root (or the overlay
//! restored into it) would, and checks the host directory is untouched. Needs root (mounts).

mod common;

use apk::mkpkg::{self, Recipe};
use apk::trust::PrivateKey;
use common::*;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A signed repository with `victim-1.0-r0` (a post-install script, one file), the keys
/// directory that trusts it, and a scratch directory standing for the host.
struct Bed {
    _t: tempfile::TempDir,
    repo: PathBuf,
    keys: PathBuf,
    root: PathBuf,
    host: PathBuf,
}

fn bed() -> Bed {
    bed_with("#!/bin/sh\nexit 0\n", false)
}

/// [`bed`] with this post-install script; with `shell`, the package also ships the host's static
/// busybox as `/bin/sh`, so the script really runs in the root.
fn bed_with(script: &str, shell: bool) -> Bed {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let payload = dir.join("payload");
    std::fs::create_dir_all(payload.join("usr/share/victim")).unwrap();
    std::fs::write(payload.join("usr/share/victim/file"), "packaged\n").unwrap();
    if shell {
        std::fs::create_dir_all(payload.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", payload.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", payload.join("bin/sh")).unwrap();
    }
    let recipe = Recipe {
        info: vec![
            ("pkgname".into(), "victim".into()),
            ("pkgver".into(), "1.0-r0".into()),
        ],
        scripts: vec![("post-install".into(), script.as_bytes().to_vec())],
        dir: Some(payload),
        epoch: Some(1_700_000_000),
    };
    let pkg = mkpkg::build(&recipe, None).unwrap();
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("x86_64")).unwrap();
    std::fs::write(repo.join("x86_64/victim-1.0-r0.apk"), &pkg).unwrap();
    let entry = mkpkg::index_entry(&pkg, &Default::default(), true).unwrap();
    let key = PrivateKey::generate_ed25519();
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("test.pub"), key.public().to_pem()).unwrap();
    let body = apk::archive::index_body(&apk::index::write(&[entry]), None, 0);
    let signed = apk::archive::resign(&body, &key, "test.pub").unwrap();
    std::fs::write(repo.join("x86_64/APKINDEX.tar.gz"), signed).unwrap();
    let host = dir.join("host");
    std::fs::create_dir_all(&host).unwrap();
    Bed {
        repo,
        keys,
        root: dir.join("root"),
        host,
        _t: t,
    }
}

/// `apk add victim`; the root has no shell, so its post-install script fails unless
/// `--no-scripts` is among `extra`.
fn add(b: &Bed, keys_dir: Option<&Path>, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "add".to_string(),
        "--root".into(),
        b.root.to_string_lossy().into_owned(),
        "--initdb".into(),
        "--no-network".into(),
        "--repository".into(),
        b.repo.to_string_lossy().into_owned(),
    ];
    if let Some(k) = keys_dir {
        args.push("--keys-dir".into());
        args.push(k.to_string_lossy().into_owned());
    }
    args.extend(extra.iter().map(|x| x.to_string()));
    args.push("victim".into());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_apk(&a);
    (o.status.code(), text(&o).1)
}

/// Regression: `lib/apk/exec` as a symlink to a host directory made `apk add` delete (and
/// rewrite) a file there named like the script.
#[test]
fn script_directory_symlink_never_reaches_the_host() {
    let b = bed();
    std::fs::create_dir_all(b.root.join("lib/apk")).unwrap();
    std::os::unix::fs::symlink(&b.host, b.root.join("lib/apk/exec")).unwrap();
    let precious = b.host.join("victim-1.0-r0.post-install");
    std::fs::write(&precious, "host data\n").unwrap();
    let (_, err) = add(&b, Some(&b.keys), &[]);
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "host data\n",
        "a host file was replaced through the symlink ({err})"
    );
    assert_eq!(std::fs::read_dir(&b.host).unwrap().count(), 1, "{err}");
    // Resolved beneath the root, the symlink leads to a directory that does not exist there: the
    // script cannot run, and says so.
    assert!(err.contains("victim-1.0-r0.post-install"), "{err}");
    assert!(b.root.join("usr/share/victim/file").exists());
}

/// Regression: `etc/apk/keys` as a symlink to a host directory made the host's keys trusted for
/// the root.
#[test]
fn keys_directory_symlink_does_not_trust_host_keys() {
    let b = bed();
    std::fs::create_dir_all(b.root.join("etc/apk")).unwrap();
    std::os::unix::fs::symlink(&b.keys, b.root.join("etc/apk/keys")).unwrap();
    let (code, err) = add(&b, None, &["--no-scripts"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("UNTRUSTED signature"), "{err}");
    assert!(!b.root.join("usr/share/victim/file").exists());
    // The same keys copied into the root are trusted.
    std::fs::remove_file(b.root.join("etc/apk/keys")).unwrap();
    std::fs::create_dir_all(b.root.join("etc/apk/keys")).unwrap();
    std::fs::copy(
        b.keys.join("test.pub"),
        b.root.join("etc/apk/keys/test.pub"),
    )
    .unwrap();
    let (code, err) = add(&b, None, &["--no-scripts"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
}

/// The database directory as a symlink to a host directory: the database is written beneath the
/// root (where the symlink leads inside it), never into the host directory.
#[test]
fn database_directory_symlink_stays_in_the_root() {
    let b = bed();
    std::fs::create_dir_all(b.root.join("lib/apk")).unwrap();
    std::os::unix::fs::symlink(&b.host, b.root.join("lib/apk/db")).unwrap();
    let _ = add(&b, Some(&b.keys), &["--no-scripts"]);
    assert_eq!(
        std::fs::read_dir(&b.host).unwrap().count(),
        0,
        "the database went to the host"
    );
}

/// Regression: with `tmp` a symlink to a host directory, `--initdb` made that directory 1777.
#[test]
fn tmp_symlink_is_not_chmodded_on_the_host() {
    let b = bed();
    std::fs::create_dir_all(&b.root).unwrap();
    std::fs::set_permissions(&b.host, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&b.host, b.root.join("tmp")).unwrap();
    let (code, err) = add(&b, Some(&b.keys), &["--no-scripts"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let mode = std::fs::metadata(&b.host).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
}

/// Regression: with `proc` a symlink to a host directory, the proc file system scripts need was
/// mounted over that host directory while the scripts ran. The package's script waits on a FIFO in
/// the root, so the test looks at the host directory while the script is running.
#[test]
fn proc_symlink_gets_no_mount_on_the_host() {
    let b = bed_with("#!/bin/sh\nread line < /wait\n", true);
    std::fs::create_dir_all(&b.root).unwrap();
    std::os::unix::fs::symlink(&b.host, b.root.join("proc")).unwrap();
    nix::unistd::mkfifo(
        &b.root.join("wait"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let mut child = std::process::Command::new(apk_bin())
        .args([
            "add",
            "--root",
            b.root.to_str().unwrap(),
            "--initdb",
            "--no-network",
        ])
        .args(["--keys-dir", b.keys.to_str().unwrap()])
        .args(["--repository", b.repo.to_str().unwrap(), "victim"])
        .env_clear()
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Opening the FIFO for writing succeeds once the script has opened it for reading.
    let fifo = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(b.root.join("wait"))
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "apk ended before the script ran"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("fifo: {e}"),
        }
    };
    let during = b.host.join("self").exists();
    std::io::Write::write_all(&mut &fifo, b"go\n").unwrap();
    drop(fifo);
    let st = child.wait().unwrap();
    assert!(
        !during,
        "proc was mounted on the host directory while the script ran"
    );
    assert!(st.success());
    assert!(!b.host.join("self").exists());
}

/// A package file larger than its index entry's `S:` is refused before it is read, naming the
/// package, the file and both sizes; nothing of it is installed.
#[test]
fn package_larger_than_its_index_size_is_refused_unread() {
    let b = bed();
    let apk = b.repo.join("x86_64/victim-1.0-r0.apk");
    let size = std::fs::metadata(&apk).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&apk).unwrap();
    std::io::Write::write_all(&mut f, &vec![0u8; 4096]).unwrap();
    drop(f);
    let (code, err) = add(&b, Some(&b.keys), &["--no-scripts"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "ERROR: victim-1.0-r0: {}: {} bytes, but the index gives {size} (S:)\n",
            apk.display(),
            size + 4096
        )
    );
    assert!(!b.root.join("usr/share/victim/file").exists());
}

/// Extended attributes of package files are set through the directory handle opened beneath the
/// root (never through a host path), on regular files and device nodes alike.
#[test]
fn xattrs_are_set_beneath_the_root() {
    use apk::tar::{Entry, Kind, Magic, Writer};
    let t = tempfile::tempdir().unwrap();
    let mut w = Writer::new(Vec::new(), Magic::Gnu);
    w.append(&Entry::new("usr/", Kind::Dir, 0o755), b"")
        .unwrap();
    let mut f = Entry::new("usr/tagged", Kind::File, 0o644);
    f.xattrs = vec![("user.apk-test".into(), b"file".to_vec())];
    w.append(&f, b"content").unwrap();
    let mut fifo = Entry::new("usr/pipe", Kind::Fifo, 0o600);
    fifo.xattrs = vec![("trusted.apk-test".into(), b"fifo".to_vec())];
    w.append(&fifo, b"").unwrap();
    let data = w.finish().unwrap();
    let buf = mkpkg::assemble(
        "pkgname = tagged\npkgver = 1.0-r0\nsize = 4096\narch = x86_64\n",
        &[],
        &data,
        0,
        None,
    )
    .unwrap();
    let file = t.path().join("tagged-1.0-r0.apk");
    std::fs::write(&file, buf).unwrap();
    let root = t.path().join("root");
    let o = run_apk(&[
        "add",
        "--root",
        root.to_str().unwrap(),
        "--initdb",
        "--allow-untrusted",
        "--force-non-repository",
        file.to_str().unwrap(),
    ]);
    assert_eq!(text(&o).1, "");
    assert_eq!(o.status.code(), Some(0));
    let attrs = apk::xattr::read(&root.join("usr/tagged")).unwrap();
    assert_eq!(attrs, vec![("user.apk-test".to_string(), b"file".to_vec())]);
    let attrs = apk::xattr::read(&root.join("usr/pipe")).unwrap();
    assert_eq!(
        attrs,
        vec![("trusted.apk-test".to_string(), b"fifo".to_vec())]
    );
}
