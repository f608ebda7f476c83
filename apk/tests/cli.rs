//! The `apk` binary end to end: exact output, exit codes, and hostile input (truncated and
//! tampered packages, wrong keys, unsigned indexes, malicious paths, malformed metadata).

mod common;

use apk::mkpkg::{self, Recipe};
use apk::tar::{Entry, Kind, Magic, Writer};
use common::*;
use std::path::{Path, PathBuf};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn apk_in(args: &[String]) -> std::process::Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run_apk(&a)
}

#[test]
fn help_and_usage() {
    let o = run_apk(&["--help"]);
    assert!(o.status.success());
    assert!(text(&o).0.contains("Add packages to world"));
    for applet in [
        "add", "del", "upgrade", "fix", "info", "list", "audit", "index", "verify", "version",
        "stats", "mkpkg", "keygen", "sign",
    ] {
        let o = run_apk(&[applet, "--help"]);
        assert!(o.status.success(), "{applet} --help");
        assert!(text(&o).0.contains("Usage"), "{applet} --help");
    }
    // No applet is needed for --print-arch; without one apk prints its usage and fails.
    let o = run_apk(&["--print-arch"]);
    assert_eq!(
        (o.status.code(), text(&o).0.as_str()),
        (Some(0), "x86_64\n")
    );
    let o = run_apk(&["--arch", "aarch64", "--print-arch"]);
    assert_eq!(text(&o).0, "aarch64\n");
    for args in [&[][..], &["--root", "/nonexistent"][..]] {
        let o = run_apk(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            text(&o).0.contains("Usage: apk"),
            "{args:?}: {:?}",
            text(&o)
        );
    }
    let o = run_apk(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run_apk(&["add", "--no-such-option", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run_apk(&["--root-tmpfs=maybe", "info"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("--root-tmpfs"));
}

#[test]
fn version_applet() {
    for (a, b, sym) in [
        ("1.0", "1.0-r1", "<"),
        ("1.0", "1.0", "="),
        ("8.2.001", "8.2.0", ">"),
    ] {
        let o = run_apk(&["version", "-t", a, b]);
        assert!(o.status.success());
        assert_eq!(text(&o).0, format!("{sym}\n"));
    }
    let o = run_apk(&["version", "-c", "1.0", "1.0-r1"]);
    assert_eq!(o.status.code(), Some(0));
    let o = run_apk(&["version", "-c", "1.0", "bad..1", "3.6.9_post1"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o).0, "bad..1\n3.6.9_post1\n");
}

/// The transcript of apk-format.md §6.4, exactly (v3 output: padded counters, indented
/// Executing lines, trigger unindented, v3 size units).
#[test]
fn alpine_base_transcript() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    install_keys(&root);
    let o = apk_in(&s(&[
        "add",
        "--root",
        root.to_str().unwrap(),
        "--initdb",
        "--no-network",
        "--repository",
        alpine_repo().to_str().unwrap(),
        "alpine-base",
    ]));
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let expected = include_str!("data/alpine-base.out");
    assert_eq!(out, expected);
    assert_eq!(err, "");
    let r = root.to_str().unwrap();
    let o = run_apk(&["--root", r, "info", "-W", "/bin/sh"]);
    assert_eq!(text(&o).0, "/bin/sh is owned by busybox-binsh-1.36.1-r15\n");
    // `version`, byte for byte as apk-tools 2.14.4 prints it: only upgradable packages by
    // default (none here), every status for named packages, names only with -q.
    let repo = alpine_repo();
    let v = [
        "--root",
        r,
        "--no-network",
        "--repository",
        repo.to_str().unwrap(),
        "version",
    ];
    let with = |extra: &[&str]| text(&run_apk(&[&v[..], extra].concat())).0;
    let header = format!("{:<42}Available:\n", "Installed:");
    assert_eq!(with(&[]), header);
    assert_eq!(
        with(&["busybox"]),
        format!("{header}busybox-1.36.1-r15                      = 1.36.1-r15 \n")
    );
    assert_eq!(with(&["-q", "-l", "=", "zlib"]), "zlib\n");
    assert_eq!(with(&["-v"]).lines().count(), 26);
    // In no repository: `=` and the installed version, as apk-tools (not `?`).
    let o = run_apk(&["--root", r, "--no-network", "version", "busybox"]);
    assert_eq!(
        text(&o).0,
        format!("{header}busybox-1.36.1-r15                      = 1.36.1-r15 \n")
    );
    // info -a of a package that is not installed: no sections that only an installed one has.
    let info = [&v[..5], &["info", "-a", "vlan"]].concat();
    let shown: Vec<String> = text(&run_apk(&info))
        .0
        .lines()
        .filter_map(|l| l.strip_prefix("vlan-2.3-r1 ").map(String::from))
        .collect();
    assert_eq!(
        shown,
        [
            "description:",
            "webpage:",
            "installed size:",
            "depends on:",
            "provides:",
            "has auto-install rule:",
            "license:"
        ]
    );
    let o = run_apk(&["info", "--root", r]);
    assert_eq!(text(&o).0.lines().count(), 25);
    let o = run_apk(&["--root", r, "stats"]);
    let st = text(&o).0;
    assert!(
        st.contains("packages: 25\n")
            && st.contains("dirs: 125\n")
            && st.contains("files: 353\n")
            && st.contains("triggers: 1\n"),
        "{st}"
    );
    let o = run_apk(&["--root", r, "info", "-e", "busybox", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o).0, "busybox\n");
    let o = run_apk(&["--root", r, "list", "-I", "busybox"]);
    assert_eq!(
        text(&o).0,
        "busybox-1.36.1-r15 x86_64 {busybox} (GPL-2.0-only) [installed]\n"
    );
    let o = run_apk(&["--root", r, "list", "-I", "-q", "busybox"]);
    assert_eq!(text(&o).0, "busybox\n");
    let o = run_apk(&["--root", r, "list", "-I", "-v", "busybox"]);
    assert_eq!(
        text(&o).0,
        "busybox-1.36.1-r15 x86_64 {busybox} (GPL-2.0-only) [installed]\n  \
         Size optimized toolbox of many common UNIX utilities\n\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/apk/world")).unwrap(),
        "alpine-base\n"
    );
    // Simulated removal shows the resulting totals and changes nothing.
    let o = run_apk(&[
        "--root",
        r,
        "--no-network",
        "--simulate",
        "del",
        "alpine-base",
    ]);
    let out = text(&o).0;
    assert_eq!(
        out.lines().filter(|l| l.contains(") Purging ")).count(),
        25,
        "{out}"
    );
    let pos = |n: &str| out.find(&format!("Purging {n} (")).unwrap();
    assert!(
        pos("alpine-base") < pos("busybox") && pos("busybox") < pos("musl"),
        "dependents first: {out}"
    );
    assert!(out.ends_with("OK: 0 B in 0 packages\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/apk/world")).unwrap(),
        "alpine-base\n"
    );
    // Unknown names are reported like apk does.
    let o = run_apk(&["--root", r, "--no-network", "add", "nosuchpkg"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o).1, "ERROR: unable to select packages:\n  nosuchpkg (no such package):\n    required by: world[nosuchpkg]\n");
    let o = run_apk(&["--root", r, "del", "nosuchpkg"]);
    assert_eq!(text(&o).1, "ERROR: No such package: nosuchpkg\n");
    let o = run_apk(&["--root", r, "add", "foo="]);
    assert_eq!(
        text(&o).1,
        "ERROR: 'foo=' is not a valid world dependency, format is name(@tag)([<>~=]version)\n"
    );
    // del of something others need keeps it and says why.
    let o = run_apk(&[
        "--root",
        r,
        "--no-network",
        "--repository",
        alpine_repo().to_str().unwrap(),
        "add",
        "busybox",
    ]);
    assert!(o.status.success());
    let o = run_apk(&[
        "--root",
        r,
        "--no-network",
        "--repository",
        alpine_repo().to_str().unwrap(),
        "del",
        "busybox",
    ]);
    let out = text(&o).0;
    assert!(
        out.starts_with(
            "World updated, but the following packages are not removed due to:\n  busybox:"
        ),
        "{out}"
    );
    assert!(out.contains("alpine-base"), "{out}");
}

/// A small repository built in the test: packages made by our mkpkg, index by `apk index`, signed
/// by `apk sign` with a key from `apk keygen`.
struct Repo {
    _t: tempfile::TempDir,
    dir: PathBuf,
    keys: PathBuf,
    key: PathBuf,
}

/// Output into a pipe whose reader went away is dropped and apk ends normally, as apk-tools (which
/// ignores SIGPIPE) does; `println!` panicked (`apk info | head`). Not killed by SIGPIPE either:
/// a transaction must never stop halfway because its output went nowhere.
#[test]
fn a_pipe_closed_by_its_reader_ends_apk_quietly() {
    let main = shared().join("fixtures/alpine-3.19-indexes/main");
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("lib/apk/db")).unwrap();
    std::fs::write(t.path().join("lib/apk/db/installed"), "").unwrap();
    std::fs::create_dir_all(t.path().join("etc/apk")).unwrap();
    std::fs::write(t.path().join("etc/apk/world"), "").unwrap();
    let mut child = std::process::Command::new(apk_bin())
        .arg("--root")
        .arg(t.path())
        .args(["list", "--available", "--no-network", "--keys-dir"])
        .arg(alpine_keys())
        .arg("--repository")
        .arg(&main)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Some 8,000 lines, far more than a pipe holds: the reader goes away at once.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{:?} {err}", o.status);
    assert_eq!(err, "");
    // A transaction whose output goes nowhere completes: files, database and world.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    install_keys(&root);
    let mut child = std::process::Command::new(apk_bin())
        .args(["add", "--initdb", "--no-network", "--no-scripts", "--root"])
        .arg(&root)
        .arg("--repository")
        .arg(alpine_repo())
        .args(["musl", "busybox", "alpine-baselayout-data"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "{st:?}");
    let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    assert_eq!(
        db.matches("\nP:").count() + usize::from(db.starts_with("P:")),
        3,
        "{db}"
    );
    assert!(root.join("etc/hosts").exists());
}

/// Package scripts run where apk's own environment has no /dev/null (apk in a chroot whose /dev
/// is empty: here a mount namespace with an empty tmpfs on /dev), as with apk-tools; they failed
/// with "/dev/null: No such file or directory".
#[test]
fn scripts_run_without_a_dev_null_around_apk() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    install_keys(&root);
    let cmd = format!(
        "mount -t tmpfs none /dev && exec '{}' add --root '{}' --initdb --no-network \
         --repository '{}' busybox",
        apk_bin().display(),
        root.display(),
        alpine_repo().display()
    );
    let o = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &cmd])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("Executing busybox-1.36.1-r15.post-install"),
        "{out}"
    );
    assert!(
        out.contains("Executing busybox-1.36.1-r15.trigger"),
        "{out}"
    );
    assert_eq!(err, "");
    // The post-install script ran: busybox's applet links are there.
    assert!(root.join("bin/ls").symlink_metadata().is_ok());
}

/// A reinstall (`fix`, and so an upgrade) keeps the empty directories the package owns, as
/// apk-tools does: they were removed as the old version's directories (found by a differential
/// of the CLI against apk-tools 2.14.4).
#[test]
fn a_reinstall_keeps_the_empty_directories_of_the_package() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    install_keys(&root);
    let r = root.to_str().unwrap();
    let repo = alpine_repo();
    let common = [
        "--root",
        r,
        "--no-network",
        "--repository",
        repo.to_str().unwrap(),
    ];
    let mut args: Vec<&str> = vec!["add", "--initdb", "--no-scripts"];
    args.extend(common);
    args.push("busybox");
    let o = run_apk(&args);
    assert!(o.status.success(), "{:?}", text(&o));
    let empty = [
        "etc/network/if-post-up.d",
        "etc/network/if-pre-down.d",
        "var/lib/udhcpd",
    ];
    for d in empty {
        assert!(root.join(d).is_dir(), "{d} after the install");
        assert_eq!(
            std::fs::read_dir(root.join(d)).unwrap().count(),
            0,
            "{d} is empty"
        );
    }
    let mut args: Vec<&str> = vec!["fix", "--no-scripts"];
    args.extend(common);
    args.push("busybox");
    let o = run_apk(&args);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("Reinstalling busybox"),
        "{:?}",
        text(&o)
    );
    for d in empty {
        assert!(root.join(d).is_dir(), "{d} after the reinstall");
    }
    let o = run_apk(&["--root", r, "audit", "--system"]);
    assert_eq!(text(&o).0, "", "{:?}", text(&o));
}

fn pkg(dir: &Path, name: &str, ver: &str, deps: &[&str], files: &[(&str, &str)]) -> PathBuf {
    let payload = dir.join(format!("payload-{name}"));
    for (p, c) in files {
        let f = payload.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, c).unwrap();
    }
    let mut info = vec![
        ("pkgname".to_string(), name.to_string()),
        ("pkgver".to_string(), ver.to_string()),
    ];
    for d in deps {
        info.push(("depend".into(), d.to_string()));
    }
    let r = Recipe {
        info,
        scripts: vec![],
        dir: Some(payload.clone()),
        epoch: Some(1_700_000_000),
    };
    let buf = mkpkg::build(&r, None).unwrap();
    let out = dir.join("x86_64").join(format!("{name}-{ver}.apk"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, buf).unwrap();
    std::fs::remove_dir_all(payload).unwrap();
    out
}

fn make_repo(extra: impl FnOnce(&Path)) -> Repo {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("repo");
    pkg(
        &dir,
        "hello",
        "1.0-r0",
        &["libgreet"],
        &[("usr/bin/hello", "#!/bin/sh\necho hello\n")],
    );
    pkg(
        &dir,
        "libgreet",
        "2.1-r0",
        &[],
        &[
            ("usr/lib/libgreet.so.2", "ELF-ish"),
            ("etc/greet.conf", "greeting=hi\n"),
        ],
    );
    extra(&dir);
    let keys = t.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = t.path().join("test-key.rsa");
    let o = run_apk(&["keygen", "-o", key.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    std::fs::copy(key.with_extension("rsa.pub"), keys.join("test-key.rsa.pub")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(dir.join("x86_64"))
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let idx = dir.join("x86_64/APKINDEX.tar.gz");
    let mut args = s(&[
        "index",
        "--allow-untrusted",
        "-d",
        "test repo",
        "-o",
        idx.to_str().unwrap(),
    ]);
    args.extend(files);
    let o = apk_in(&args);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.starts_with("Index has "), "{:?}", text(&o));
    let o = run_apk(&["sign", "-k", key.to_str().unwrap(), idx.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run_apk(&[
        "verify",
        "--keys-dir",
        keys.to_str().unwrap(),
        idx.to_str().unwrap(),
    ]);
    assert_eq!(text(&o).0, format!("{}: OK\n", idx.display()));
    Repo {
        _t: t,
        dir,
        keys,
        key,
    }
}

fn add(repo: &Repo, root: &Path, extra: &[&str], pkgs: &[&str]) -> std::process::Output {
    let mut a = s(&[
        "add",
        "--root",
        root.to_str().unwrap(),
        "--initdb",
        "--no-network",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
    ]);
    a.extend(extra.iter().map(|x| x.to_string()));
    a.extend(pkgs.iter().map(|x| x.to_string()));
    apk_in(&a)
}

#[test]
fn own_repository_install_upgrade_remove() {
    let repo = make_repo(|_| {});
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("r");
    let o = add(&repo, &root, &[], &["hello"]);
    assert_eq!(text(&o).0, "(1/2) Installing libgreet (2.1-r0)\n(2/2) Installing hello (1.0-r0)\nOK: 12 KiB in 2 packages\n");
    assert_eq!(
        std::fs::read_to_string(root.join("usr/bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    // Modified configuration survives an upgrade as .apk-new.
    std::fs::write(root.join("etc/greet.conf"), "greeting=mine\n").unwrap();
    pkg(
        &repo.dir,
        "libgreet",
        "2.2-r0",
        &[],
        &[
            ("usr/lib/libgreet.so.2", "ELF-ish v2"),
            ("etc/greet.conf", "greeting=hello\n"),
        ],
    );
    let mut files: Vec<String> = std::fs::read_dir(repo.dir.join("x86_64"))
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".apk"))
        .collect();
    files.sort();
    let idx = repo.dir.join("x86_64/APKINDEX.tar.gz");
    let mut args = s(&["index", "--allow-untrusted", "-o", idx.to_str().unwrap()]);
    args.extend(files);
    assert!(apk_in(&args).status.success());
    assert!(run_apk(&[
        "sign",
        "-k",
        repo.key.to_str().unwrap(),
        idx.to_str().unwrap()
    ])
    .status
    .success());
    let r = root.to_str().unwrap();
    let o = run_apk(&[
        "--root",
        r,
        "--no-network",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
        "upgrade",
    ]);
    assert_eq!(text(&o).0, "(1/1) Upgrading libgreet (2.1-r0 -> 2.2-r0)\n  Installing file to etc/greet.conf.apk-new\nOK: 12 KiB in 2 packages\n");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/greet.conf")).unwrap(),
        "greeting=mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/greet.conf.apk-new")).unwrap(),
        "greeting=hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("usr/lib/libgreet.so.2")).unwrap(),
        "ELF-ish v2"
    );
    let o = run_apk(&["--root", r, "audit"]);
    assert!(text(&o).0.contains("U etc/greet.conf\n"), "{:?}", text(&o));
    let o = run_apk(&[
        "--root",
        r,
        "--no-network",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
        "del",
        "hello",
    ]);
    assert_eq!(
        text(&o).0,
        "(1/2) Purging hello (1.0-r0)\n(2/2) Purging libgreet (2.2-r0)\nOK: 0 B in 0 packages\n"
    );
    assert!(!root.join("usr/bin/hello").exists());
    assert!(!root.join("usr/lib/libgreet.so.2").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/greet.conf")).unwrap(),
        "greeting=mine\n",
        "modified config kept"
    );
}

#[test]
fn untrusted_and_forged_indexes() {
    let repo = make_repo(|_| {});
    let t = tempfile::tempdir().unwrap();
    // A different key set: the index is untrusted.
    let other = t.path().join("otherkeys");
    std::fs::create_dir_all(&other).unwrap();
    let o = apk_in(&s(&[
        "add",
        "--root",
        t.path().join("r1").to_str().unwrap(),
        "--initdb",
        "--no-network",
        "--keys-dir",
        other.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
        "hello",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(
        err.starts_with(&format!(
            "WARNING: opening {}/x86_64/APKINDEX.tar.gz: UNTRUSTED signature\n",
            repo.dir.display()
        )),
        "{err}"
    );
    assert!(err.contains("hello (no such package)"), "{err}");
    // --allow-untrusted accepts a missing key ...
    let o = apk_in(&s(&[
        "add",
        "--root",
        t.path().join("r2").to_str().unwrap(),
        "--initdb",
        "--no-network",
        "--allow-untrusted",
        "--keys-dir",
        other.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
        "hello",
    ]));
    assert!(o.status.success(), "{:?}", text(&o));
    // ... but never a bad signature: a key with the trusted name but other material.
    let forger = t.path().join("test-key.rsa");
    assert!(run_apk(&["keygen", "-o", forger.to_str().unwrap()])
        .status
        .success());
    let idx = repo.dir.join("x86_64/APKINDEX.tar.gz");
    assert!(run_apk(&[
        "sign",
        "-k",
        forger.to_str().unwrap(),
        idx.to_str().unwrap()
    ])
    .status
    .success());
    let o = apk_in(&s(&[
        "add",
        "--root",
        t.path().join("r3").to_str().unwrap(),
        "--initdb",
        "--no-network",
        "--allow-untrusted",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
        "hello",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("APKINDEX.tar.gz: BAD signature"),
        "{:?}",
        text(&o)
    );
    let o = run_apk(&[
        "verify",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        idx.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o).0, format!("{}: BAD signature\n", idx.display()));
    // An unsigned index needs --allow-untrusted.
    let unsigned = t.path().join("unsigned");
    std::fs::create_dir_all(unsigned.join("x86_64")).unwrap();
    for e in std::fs::read_dir(repo.dir.join("x86_64"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), unsigned.join("x86_64").join(e.file_name())).unwrap();
    }
    let files: Vec<String> = std::fs::read_dir(unsigned.join("x86_64"))
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".apk"))
        .collect();
    let mut a = s(&[
        "index",
        "--allow-untrusted",
        "-o",
        unsigned.join("x86_64/APKINDEX.tar.gz").to_str().unwrap(),
    ]);
    a.extend(files);
    assert!(apk_in(&a).status.success());
    let o = apk_in(&s(&[
        "add",
        "--root",
        t.path().join("r4").to_str().unwrap(),
        "--initdb",
        "--no-network",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        unsigned.to_str().unwrap(),
        "hello",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("APKINDEX.tar.gz: UNTRUSTED signature"));
}

/// Flip one byte in each member of a package listed in a signed index: the install refuses that
/// package, names it and the cause, and leaves nothing of it in the root.
#[test]
fn tampered_and_truncated_packages() {
    let repo = make_repo(|_| {});
    let file = repo.dir.join("x86_64/libgreet-2.1-r0.apk");
    let good = std::fs::read(&file).unwrap();
    // Member boundaries: control member then data member (unsigned packages).
    let control_end = apk::gzip::inflate_member(&good, 0, 1 << 20)
        .unwrap()
        .range
        .end;
    for (label, pos) in [
        ("control", control_end / 2),
        ("data", control_end + (good.len() - control_end) / 2),
        ("data trailer", good.len() - 2),
    ] {
        let mut bad = good.clone();
        bad[pos] ^= 0x20;
        std::fs::write(&file, &bad).unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("r");
        let o = add(&repo, &root, &[], &["libgreet"]);
        let (out, err) = text(&o);
        assert_ne!(
            o.status.code(),
            Some(0),
            "{label}: accepted a flipped byte\n{out}{err}"
        );
        assert!(
            err.starts_with("ERROR: libgreet-2.1-r0: "),
            "{label}: {err}"
        );
        assert!(
            err.contains("integrity error")
                || err.contains("unexpected end of file")
                || err.contains("format error"),
            "{label}: {err}"
        );
        assert!(
            out.ends_with("1 error; 0 B in 0 packages\n"),
            "{label}: {out}"
        );
        assert!(
            !root.join("usr/lib/libgreet.so.2").exists() && !root.join("etc/greet.conf").exists(),
            "{label}: files left"
        );
        let leftovers: Vec<_> = walk_names(&root)
            .into_iter()
            .filter(|n| n.contains(".apk."))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{label}: temp files left: {leftovers:?}"
        );
    }
    for cut in [10, control_end - 5, control_end + 20, good.len() - 1] {
        std::fs::write(&file, &good[..cut]).unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("r");
        let o = add(&repo, &root, &[], &["libgreet"]);
        assert_ne!(o.status.code(), Some(0));
        assert!(
            text(&o).1.starts_with("ERROR: libgreet-2.1-r0: "),
            "{:?}",
            text(&o)
        );
        assert!(!root.join("etc/greet.conf").exists());
        // The same truncated file given directly names the file.
        let o = apk_in(&s(&[
            "add",
            "--root",
            t.path().join("r2").to_str().unwrap(),
            "--initdb",
            "--allow-untrusted",
            file.to_str().unwrap(),
        ]));
        assert_eq!(o.status.code(), Some(1));
        assert!(
            text(&o)
                .1
                .starts_with(&format!("ERROR: {}: ", file.display())),
            "{:?}",
            text(&o)
        );
    }
    std::fs::write(&file, &good).unwrap();
}

fn walk_names(root: &Path) -> Vec<String> {
    snapshot(root).into_keys().collect()
}

/// Hostile names inside a package are refused; a symlink cannot carry files out of the root.
#[test]
fn malicious_paths_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let mut w = Writer::new(Vec::new(), Magic::Gnu);
    let dir = |n: &str| Entry::new(n, Kind::Dir, 0o755);
    let file = |n: &str| Entry::new(n, Kind::File, 0o644);
    w.append(&dir("etc/"), b"").unwrap();
    w.append(&file("etc/good.conf"), b"ok").unwrap();
    w.append(&file("../escape"), b"x").unwrap();
    w.append(&file(&format!("{}/abs", outside.display())), b"x")
        .unwrap();
    w.append(&file("etc/../../dotdot"), b"x").unwrap();
    let mut l = Entry::new("etc/link", Kind::Symlink, 0o777);
    l.link = outside.to_string_lossy().into_owned();
    w.append(&l, b"").unwrap();
    w.append(&file("etc/link/through"), b"x").unwrap();
    let data = w.finish().unwrap();
    let buf = mkpkg::assemble(
        "pkgname = evil\npkgver = 1.0-r0\nsize = 4096\narch = x86_64\n",
        &[],
        &data,
        0,
        None,
    )
    .unwrap();
    let f = t.path().join("evil-1.0-r0.apk");
    std::fs::write(&f, buf).unwrap();
    let root = t.path().join("root");
    let o = apk_in(&s(&[
        "add",
        "--root",
        root.to_str().unwrap(),
        "--initdb",
        "--allow-untrusted",
        "--force-non-repository",
        f.to_str().unwrap(),
    ]));
    let (out, err) = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        err.contains("WARNING: evil-1.0-r0: ignoring malicious file ../escape\n"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "WARNING: evil-1.0-r0: ignoring malicious file {}/abs\n",
            outside.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("WARNING: evil-1.0-r0: ignoring malicious file etc/../../dotdot\n"),
        "{err}"
    );
    assert!(
        err.contains("ERROR: evil-1.0-r0: etc/link/through: no dirent in archive\n"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something escaped the root"
    );
    assert!(!t.path().join("escape").exists() && !t.path().join("dotdot").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/good.conf")).unwrap(),
        "ok"
    );
    let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    assert!(db.contains("f:f\n"), "broken files flag: {db}");
}

#[test]
fn malformed_metadata() {
    let t = tempfile::tempdir().unwrap();
    let data = Writer::new(Vec::new(), Magic::Gnu).finish().unwrap();
    let buf = mkpkg::assemble(
        "pkgname = bad\npkgver = not..a.version\n",
        &[],
        &data,
        0,
        None,
    )
    .unwrap();
    let f = t.path().join("bad-1.apk");
    std::fs::write(&f, buf).unwrap();
    let o = apk_in(&s(&[
        "add",
        "--root",
        t.path().join("r").to_str().unwrap(),
        "--initdb",
        "--allow-untrusted",
        f.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o).1, format!("ERROR: {}: v2 package format error (.PKGINFO: invalid or missing pkgver 'not..a.version')\n", f.display()));
    let o = apk_in(&s(&[
        "index",
        "--allow-untrusted",
        "-o",
        t.path().join("i.tar.gz").to_str().unwrap(),
        f.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(!t.path().join("i.tar.gz").exists(), "no half-written index");
    // A malformed index line costs its entry, not the index (the rest is
    // tests/index_loading.rs).
    let repo = t.path().join("repo/x86_64");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("APKINDEX.tar.gz"),
        apk::archive::index_body(
            "P:x\nV:1\nthis is not a letter line\n\nP:y\nV:1\n\n",
            None,
            0,
        ),
    )
    .unwrap();
    let add = |pkg: &str, root: &str| {
        apk_in(&s(&[
            "add",
            "--root",
            t.path().join(root).to_str().unwrap(),
            "--initdb",
            "--allow-untrusted",
            "--repository",
            t.path().join("repo").to_str().unwrap(),
            pkg,
        ]))
    };
    let warning = format!(
        "WARNING: {}/APKINDEX.tar.gz: skipped the entry at line 3: x: malformed line 'this is not a letter line'\n",
        repo.display()
    );
    let o = add("x", "r2");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1,
        format!("{warning}ERROR: unable to select packages:\n  x (no such package):\n    required by: world[x]\n")
    );
    let o = add("y", "r3");
    assert_eq!(text(&o).1, warning);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn mkpkg_is_reproducible_and_installable() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("payload/sbin");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("tool"), "#!/bin/sh\n").unwrap();
    let build = |out: &Path| {
        std::process::Command::new(apk_bin())
            .args([
                "mkpkg",
                "-o",
                out.to_str().unwrap(),
                "-I",
                "pkgname=tool",
                "-I",
                "pkgver=1.2-r0",
                "-I",
                "replaces=alpine-conf",
                "-I",
                "pkgdesc=A tool",
            ])
            .arg(t.path().join("payload"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap()
    };
    let (a, b) = (t.path().join("a.apk"), t.path().join("b.apk"));
    assert!(build(&a).status.success());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(build(&b).status.success());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let root = t.path().join("root");
    let o = apk_in(&s(&[
        "add",
        "--root",
        root.to_str().unwrap(),
        "--initdb",
        "--allow-untrusted",
        "--force-non-repository",
        a.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{:?}", text(&o));
    let world = std::fs::read_to_string(root.join("etc/apk/world")).unwrap();
    assert!(world.starts_with("tool><Q1"), "{world}");
    let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    assert!(db.contains("r:alpine-conf\n"), "{db}");
}

/// `add -t NAME deps`: a virtual package in world; `del NAME` takes its dependencies away again.
#[test]
fn virtual_packages() {
    let repo = make_repo(|_| {});
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("r");
    let o = add(
        &repo,
        &root,
        &["-t", ".build-deps=20240101.000000"],
        &["hello"],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert_eq!(out, "(1/3) Installing libgreet (2.1-r0)\n(2/3) Installing hello (1.0-r0)\n(3/3) Installing .build-deps (20240101.000000)\nOK: 12 KiB in 3 packages\n");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/apk/world")).unwrap(),
        ".build-deps\n"
    );
    let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    assert!(
        db.contains("P:.build-deps\nV:20240101.000000\nA:noarch\n"),
        "{db}"
    );
    let r = root.to_str().unwrap();
    let o = run_apk(&[
        "--root",
        r,
        "--no-network",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
        "del",
        ".build-deps",
    ]);
    assert_eq!(text(&o).0, "(1/3) Purging .build-deps (20240101.000000)\n(2/3) Purging hello (1.0-r0)\n(3/3) Purging libgreet (2.1-r0)\nOK: 0 B in 0 packages\n");
    // Bad specifiers are refused with apk's wording.
    let o = add(&repo, &t.path().join("r2"), &["-t", ".v>1"], &["hello"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o).1, "ERROR: .v>1: bad package specifier\n");
    let o = add(&repo, &t.path().join("r3"), &["-t", ".empty"], &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(text(&o).1, "WARNING: creating empty virtual package\n");
    // Without packages, add installs the world as it is (apk-tools does the same).
    let o = add(&repo, &t.path().join("r4"), &[], &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(text(&o).0, "OK: 0 B in 0 packages\n");
}

/// `--no-scripts` installs without running anything; `-v` lists the plan before removing.
#[test]
fn no_scripts_and_verbose_plan() {
    let repo = make_repo(|dir| {
        let payload = dir.join("payload-scripted");
        std::fs::create_dir_all(payload.join("etc")).unwrap();
        std::fs::write(payload.join("etc/scripted.conf"), "x\n").unwrap();
        let r = Recipe {
            info: vec![
                ("pkgname".into(), "scripted".into()),
                ("pkgver".into(), "1-r0".into()),
            ],
            scripts: vec![(
                "post-install".into(),
                b"#!/bin/sh\necho ran > /script-ran\n".to_vec(),
            )],
            dir: Some(payload.clone()),
            epoch: Some(1_700_000_000),
        };
        std::fs::write(
            dir.join("x86_64/scripted-1-r0.apk"),
            mkpkg::build(&r, None).unwrap(),
        )
        .unwrap();
        std::fs::remove_dir_all(payload).unwrap();
    });
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("r");
    let o = add(&repo, &root, &["--no-scripts"], &["scripted"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!text(&o).0.contains("Executing"), "{:?}", text(&o));
    assert!(root.join("etc/scripted.conf").exists());
    assert!(
        !root.join("script-ran").exists(),
        "--no-scripts ran a script"
    );
    let r = root.to_str().unwrap();
    let o = run_apk(&[
        "--root",
        r,
        "-v",
        "--no-network",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
        "del",
        "scripted",
    ]);
    let out = text(&o).0;
    assert_eq!(out, "The following packages will be REMOVED:\n  scripted (1-r0)\nAfter this operation, 4096 B of disk space will be freed.\n(1/1) Purging scripted (1-r0)\nOK: 0 packages, 0 dirs, 0 files, 0 B\n");
}

/// A change of pinning alone (the package stays, only its tag changes) reads no package: the
/// install after it in the same transaction gets its own package, not the pinned one's.
#[test]
fn pinning_change_before_an_install() {
    let repo = make_repo(|_| {});
    let t = tempfile::tempdir().unwrap();
    // The same packages again as a tagged repository.
    let tagged = t.path().join("tagged");
    std::fs::create_dir_all(tagged.join("x86_64")).unwrap();
    for e in std::fs::read_dir(repo.dir.join("x86_64"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), tagged.join("x86_64").join(e.file_name())).unwrap();
    }
    let root = t.path().join("r");
    let r = root.to_str().unwrap();
    std::fs::create_dir_all(root.join("etc/apk")).unwrap();
    let repos = root.join("etc/apk/repositories");
    std::fs::write(&repos, format!("@t {}\n", tagged.display())).unwrap();
    let keys = repo.keys.to_str().unwrap();
    let base = ["--root", r, "--no-network", "--keys-dir", keys];
    let o = run_apk(&[&base[..], &["--initdb", "add", "libgreet@t"]].concat());
    assert!(o.status.success(), "{:?}", text(&o));
    // Untagged too now: `libgreet` without a tag moves its pinning, and hello comes after it.
    std::fs::write(
        &repos,
        format!("@t {}\n{}\n", tagged.display(), repo.dir.display()),
    )
    .unwrap();
    let o = run_apk(&[&base[..], &["add", "libgreet", "hello"]].concat());
    assert_eq!(
        text(&o),
        (
            "(1/2) Updating pinning libgreet (2.1-r0)\n(2/2) Installing hello (1.0-r0)\nOK: 12 KiB in 2 packages\n".to_string(),
            String::new()
        )
    );
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(root.join("usr/bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
}

/// `upgrade --prune` drops world entries no repository provides; an environment (APK_CONFIG and
/// friends) never changes what apk does.
#[test]
fn upgrade_prune_and_environment() {
    let repo = make_repo(|_| {});
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("r");
    assert!(add(&repo, &root, &[], &["hello"]).status.success());
    let r = root.to_str().unwrap();
    // A world entry for something that was installed from a file and is in no repository.
    let mut world = std::fs::read_to_string(root.join("etc/apk/world")).unwrap();
    world.push_str("gone\n");
    std::fs::write(root.join("etc/apk/world"), world).unwrap();
    let base = [
        "--root",
        r,
        "--no-network",
        "--keys-dir",
        repo.keys.to_str().unwrap(),
        "--repository",
        repo.dir.to_str().unwrap(),
    ];
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["upgrade", "--prune"]);
    let o = run_apk(&a);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(root.join("etc/apk/world")).unwrap(),
        "hello\n"
    );
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["--simulate", "del", "hello"]);
    let plain = run_apk(&a);
    let with_env = std::process::Command::new(apk_bin())
        .args(&a)
        .env("APK_CONFIG", "/nonexistent/config")
        .env("LANG", "de_DE.UTF-8")
        .env("APK_PROGRESS_CHAR", "*")
        .output()
        .unwrap();
    assert_eq!(plain.stdout, with_env.stdout);
    assert_eq!(plain.stderr, with_env.stderr);
    assert_eq!(plain.status.code(), with_env.status.code());
}

/// `--progress-fd N` writes `done/total stage` lines; without a terminal there is no bar.
#[test]
fn progress_fd_lines() {
    let repo = make_repo(|_| {});
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("r");
    let fdfile = t.path().join("progress");
    let cmd = format!(
        "{} add --root {} --initdb --no-network --keys-dir {} --repository {} --progress-fd 3 hello 3>{}",
        apk_bin().display(),
        root.display(),
        repo.keys.display(),
        repo.dir.display(),
        fdfile.display()
    );
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!text(&o).0.contains('\x1b'), "no bar on a pipe");
    let lines = std::fs::read_to_string(&fdfile).unwrap();
    let v: Vec<&str> = lines.lines().collect();
    assert!(v.len() >= 3, "{lines}");
    assert!(
        v[0].starts_with("0/") && v[0].ends_with(" installing"),
        "{lines}"
    );
    let last = v.last().unwrap();
    let (done, total) = last.split_once(' ').unwrap().0.split_once('/').unwrap();
    assert_eq!(done, total, "{lines}");
}

/// `apk add --usermode` (v3): nothing is chowned (run as root here, everything stays root's),
/// while the database records the package's owners; `apk list --manifest` (v3) prints the
/// installed packages as `NAME VERSION`; the help of each applet lists these options.
#[test]
fn usermode_manifest_and_their_help() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    install_keys(&root);
    let r = root.to_str().unwrap();
    let repo = alpine_repo();
    let o = run_apk(&[
        "add",
        "-q",
        "--root",
        r,
        "--initdb",
        "--no-network",
        "--usermode",
        "--repository",
        repo.to_str().unwrap(),
        "alpine-base",
        "chrony",
    ]);
    let _ = nix::mount::umount2(&root.join("proc"), nix::mount::MntFlags::MNT_DETACH);
    assert!(o.status.success(), "{:?}", text(&o));
    let tree = snapshot(&root);
    // chrony's directories are chrony:chrony in the package (and with --no-chown).
    for p in ["var/lib/chrony", "etc/chrony"] {
        assert_eq!((tree[p].uid, tree[p].gid), (0, 0), "{p}");
    }
    let db = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    assert!(
        db.contains("R:shadow\na:0:42:640\n"),
        "package owner recorded"
    );
    assert!(db.contains("F:var/lib/chrony\nM:100:101:755\n"));

    let o = run_apk(&["--root", r, "list", "--manifest"]);
    assert!(o.status.success());
    let listed: Vec<String> = text(&o).0.lines().map(str::to_string).collect();
    let mut expected: Vec<String> = apk::db::installed::parse(&db)
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p.pkg.name, p.pkg.version))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(listed.iter().any(|l| l.starts_with("chrony 4.5-r0")));
    // A pattern narrows it; --manifest lists installed packages only.
    let o = run_apk(&[
        "--root",
        r,
        "--repository",
        repo.to_str().unwrap(),
        "list",
        "--manifest",
        "busybox*",
    ]);
    let (out, _) = text(&o);
    assert!(out.lines().all(|l| l.starts_with("busybox")), "{out}");
    assert!(out.contains("busybox 1.36.1-r15\n"), "{out}");
    assert!(!out.contains("busybox-extras"), "not installed: {out}");

    for (applet, opts) in [
        ("add", &["--usermode", "--no-chown"][..]),
        ("fix", &["--directory-permissions"][..]),
        ("list", &["--manifest"][..]),
    ] {
        let (help, _) = text(&run_apk(&[applet, "--help"]));
        for opt in opts {
            assert!(help.contains(opt), "apk {applet} --help lacks {opt}");
        }
    }
}
