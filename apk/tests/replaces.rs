//! Who owns a file two packages ship (apk-tools' `apk_pkg_replaces_file`): the replacing package
//! takes it over and the file moves to it in the installed database; the owner keeps it when it
//! replaces the newcomer; otherwise the packages conflict (`--force-overwrite` moves it anyway).
//! The differential against apk-tools is `oracle.rs` (alpine-base with the project's lbu).

mod common;

use apk::mkpkg::{self, Recipe};
use common::*;
use std::path::{Path, PathBuf};

struct Repo {
    _t: tempfile::TempDir,
    dir: PathBuf,
}

/// `name-ver` shipping `usr/bin/tool` with `content`, plus `.PKGINFO` lines `extra`.
fn package(dir: &Path, name: &str, ver: &str, content: &str, extra: &[(&str, &str)]) {
    let payload = dir.join(format!("payload-{name}-{ver}"));
    std::fs::create_dir_all(payload.join("usr/bin")).unwrap();
    std::fs::write(payload.join("usr/bin/tool"), content).unwrap();
    let mut info = vec![
        ("pkgname".to_string(), name.to_string()),
        ("pkgver".to_string(), ver.to_string()),
    ];
    info.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let r = Recipe {
        info,
        scripts: vec![],
        dir: Some(payload.clone()),
        epoch: Some(1_700_000_000),
    };
    let buf = mkpkg::build(&r, None).unwrap();
    std::fs::create_dir_all(dir.join("x86_64")).unwrap();
    std::fs::write(dir.join(format!("x86_64/{name}-{ver}.apk")), buf).unwrap();
    std::fs::remove_dir_all(payload).unwrap();
}

/// A package for [`repo`]: name, version, content of `usr/bin/tool`, extra `.PKGINFO` lines.
type Spec<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);

fn repo(pkgs: &[Spec<'_>]) -> Repo {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("repo");
    for (name, ver, content, extra) in pkgs {
        package(&dir, name, ver, content, extra);
    }
    let mut files: Vec<String> = std::fs::read_dir(dir.join("x86_64"))
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let idx = dir.join("x86_64/APKINDEX.tar.gz");
    let mut args = vec!["index", "--allow-untrusted", "-o", idx.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let o = run_apk(&args);
    assert!(o.status.success(), "{:?}", text(&o));
    Repo { _t: t, dir }
}

fn apk(repo: &Repo, root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut a = vec![
        "--root",
        root.to_str().unwrap(),
        "--no-network",
        "--allow-untrusted",
        "--repository",
        repo.dir.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    let o = run_apk(&a);
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

fn owner(repo: &Repo, root: &Path) -> String {
    apk(repo, root, &["info", "-W", "/usr/bin/tool"]).1
}

fn listed_by(repo: &Repo, root: &Path, pkg: &str) -> bool {
    apk(repo, root, &["info", "-L", pkg])
        .1
        .lines()
        .any(|l| l == "usr/bin/tool")
}

fn content(root: &Path) -> String {
    std::fs::read_to_string(root.join("usr/bin/tool")).unwrap()
}

/// The replacing package installed second takes the file over; the replaced one lists it no more,
/// and upgrading the replaced package later leaves the file with its new owner.
#[test]
fn replacing_package_takes_the_file_and_keeps_it_across_upgrades() {
    let r = repo(&[
        ("base", "1.0-r0", "base\n", &[]),
        ("base", "2.0-r0", "base 2\n", &[]),
        ("better", "1.0-r0", "better\n", &[("replaces", "base")]),
    ]);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let (code, _, err) = apk(&r, &root, &["add", "--initdb", "base<2"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let (code, _, err) = apk(&r, &root, &["add", "better"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(content(&root), "better\n");
    assert_eq!(
        owner(&r, &root),
        "/usr/bin/tool is owned by better-1.0-r0\n"
    );
    assert!(!listed_by(&r, &root, "base"), "base still lists the file");
    assert!(listed_by(&r, &root, "better"));
    // base 2.0 ships the file again: better replaces base, so better keeps it, silently.
    let (code, _, err) = apk(&r, &root, &["add", "base"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(content(&root), "better\n");
    assert_eq!(
        owner(&r, &root),
        "/usr/bin/tool is owned by better-1.0-r0\n"
    );
    // Removing base leaves better's file alone.
    let (code, _, err) = apk(&r, &root, &["del", "base"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(content(&root), "better\n");
}

/// Installed in the other order, the replaced package never gets the file.
#[test]
fn replaced_package_installed_later_does_not_get_the_file() {
    let r = repo(&[
        ("base", "1.0-r0", "base\n", &[]),
        ("better", "1.0-r0", "better\n", &[("replaces", "base")]),
    ]);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let (code, _, err) = apk(&r, &root, &["add", "--initdb", "better"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let (code, _, err) = apk(&r, &root, &["add", "base"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert_eq!(content(&root), "better\n");
    assert!(!listed_by(&r, &root, "base"));
}

/// Both replace each other: the higher `replaces_priority` wins, whoever comes second.
#[test]
fn replaces_priority_decides_between_mutual_replacements() {
    let r = repo(&[
        ("low", "1.0-r0", "low\n", &[("replaces", "high")]),
        (
            "high",
            "1.0-r0",
            "high\n",
            &[("replaces", "low"), ("replaces_priority", "10")],
        ),
    ]);
    for order in [["low", "high"], ["high", "low"]] {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let (code, _, err) = apk(&r, &root, &["add", "--initdb", order[0]]);
        assert_eq!((code, err.as_str()), (Some(0), ""));
        let (code, _, err) = apk(&r, &root, &["add", order[1]]);
        assert_eq!((code, err.as_str()), (Some(0), ""), "{order:?}");
        assert_eq!(content(&root), "high\n", "{order:?}");
        assert_eq!(
            owner(&r, &root),
            "/usr/bin/tool is owned by high-1.0-r0\n",
            "{order:?}"
        );
    }
}

/// Without `replaces` the packages conflict; `--force-overwrite` writes the file and moves it.
#[test]
fn unrelated_packages_conflict_unless_forced() {
    let r = repo(&[
        ("one", "1.0-r0", "one\n", &[]),
        ("two", "1.0-r0", "two\n", &[]),
    ]);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let (code, _, err) = apk(&r, &root, &["add", "--initdb", "one"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let (code, _, err) = apk(&r, &root, &["add", "two"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "ERROR: two-1.0-r0: trying to overwrite usr/bin/tool owned by one-1.0-r0.\n"
    );
    assert_eq!(content(&root), "one\n");
    let (code, _, err) = apk(&r, &root, &["--force-overwrite", "fix", "two"]);
    assert_eq!(
        err,
        "WARNING: two-1.0-r0: overwriting usr/bin/tool owned by one-1.0-r0.\n"
    );
    assert_eq!(code, Some(0));
    assert_eq!(content(&root), "two\n");
    assert_eq!(owner(&r, &root), "/usr/bin/tool is owned by two-1.0-r0\n");
    assert!(!listed_by(&r, &root, "one"));
}
