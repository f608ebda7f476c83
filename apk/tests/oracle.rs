//! Differential tests against the real apk-tools (2.14.4, from Alpine's minirootfs, run in a
//! chroot): the same repository and world must give the same tree (every path, type, mode, owner,
//! link target and content) and installed databases listing the same packages with the same files
//! and checksums. Needs root (chroot, mounts), as CI has.
//!
//! Differences allowed, because apk-tools v3 (which we follow) deliberately differs from v2:
//! - v2's `--initdb` creates `dev/{console,null,random,urandom,zero}`; v3 does not;
//! - v2 leaves `lib/apk/db/lock` behind; v3 removes it;
//! - v3 writes `var/log/apk.log` (we do not write it either way);
//! - v3 makes `lib/apk/exec` 0755 (v2 0700) and `proc` 0755 (v2 0555);
//! - the database files themselves are compared by content (packages, files, checksums,
//!   scripts, triggers), not byte for byte.

mod common;

use apk::db::installed::{self, InstalledPackage};
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The oracle chroot, extracted once per test binary.
fn oracle() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the oracle tests need root (chroot and mounts)"
        );
        let d = std::env::temp_dir().join(format!("apk-oracle-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let st = Command::new("tar")
            .arg("xzf")
            .arg(shared().join("fixtures/alpine-minirootfs-3.20.3-x86_64.tar.gz"))
            .arg("-C")
            .arg(&d)
            .status()
            .unwrap();
        assert!(st.success());
        d
    })
}

static SERIAL: Mutex<()> = Mutex::new(());

struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn bind(src: &Path, dst: &Path, mounts: &mut Mounts) {
    std::fs::create_dir_all(dst).unwrap();
    nix::mount::mount(
        Some(src),
        dst,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    mounts.0.push(dst.to_path_buf());
}

/// Install `pkgs` with both apks. Each repository is `(host dir holding <arch>/APKINDEX.tar.gz or
/// the index itself, path to give our apk)`. Returns (oracle root, our root).
fn install_both(
    name: &str,
    oracle_repos: &[(&Path, &str)],
    our_repos: &[String],
    keys: &[PathBuf],
    pkgs: &[String],
) -> (PathBuf, PathBuf, Mounts) {
    install_both_with(name, oracle_repos, our_repos, keys, &[], pkgs)
}

/// [`install_both`] with `extra` options for both `apk add`s.
fn install_both_with(
    name: &str,
    oracle_repos: &[(&Path, &str)],
    our_repos: &[String],
    keys: &[PathBuf],
    extra: &[&str],
    pkgs: &[String],
) -> (PathBuf, PathBuf, Mounts) {
    let o = oracle();
    let mut mounts = Mounts(Vec::new());
    let mut orepo_args = Vec::new();
    for (src, inside) in oracle_repos {
        bind(src, &o.join(inside.trim_start_matches('/')), &mut mounts);
        orepo_args.push("--repository".to_string());
        orepo_args.push(inside.split("/x86_64").next().unwrap().to_string());
    }
    let oroot_rel = format!("roots/{name}");
    let oroot = o.join(&oroot_rel);
    let _ = std::fs::remove_dir_all(&oroot);
    std::fs::create_dir_all(oroot.join("etc/apk/keys")).unwrap();
    let ours = std::env::temp_dir().join(format!("apk-ours-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ours);
    std::fs::create_dir_all(ours.join("etc/apk/keys")).unwrap();
    for k in keys {
        for e in std::fs::read_dir(k)
            .map(|r| r.flatten().collect::<Vec<_>>())
            .unwrap_or_else(|_| vec![])
        {
            std::fs::copy(e.path(), oroot.join("etc/apk/keys").join(e.file_name())).unwrap();
            std::fs::copy(e.path(), ours.join("etc/apk/keys").join(e.file_name())).unwrap();
        }
        if k.is_file() {
            let n = k.file_name().unwrap();
            std::fs::copy(k, oroot.join("etc/apk/keys").join(n)).unwrap();
            std::fs::copy(k, ours.join("etc/apk/keys").join(n)).unwrap();
        }
    }
    let out = Command::new("chroot")
        .arg(o)
        .args([
            "apk",
            "add",
            "-q",
            "--root",
            &format!("/{oroot_rel}"),
            "--initdb",
            "--no-network",
        ])
        .args(extra)
        .args(&orepo_args)
        .args(pkgs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args: Vec<String> = vec![
        "add".into(),
        "-q".into(),
        "--root".into(),
        ours.to_string_lossy().into_owned(),
        "--initdb".into(),
        "--no-network".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    for r in our_repos {
        args.push("--repository".into());
        args.push(r.clone());
    }
    args.extend(pkgs.iter().cloned());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_apk(&a);
    assert!(out.status.success(), "our apk failed: {:?}", text(&out));
    // /proc may still be mounted by the oracle in its root.
    let _ = nix::mount::umount2(&oroot.join("proc"), nix::mount::MntFlags::MNT_DETACH);
    (oroot, ours, mounts)
}

fn db_view(root: &Path) -> BTreeMap<String, (String, String, Vec<String>)> {
    let text = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    let pkgs: Vec<InstalledPackage> = installed::parse(&text).unwrap();
    pkgs.into_iter()
        .map(|p| {
            let mut files = Vec::new();
            for d in &p.dirs {
                files.push(format!("D {} {:?}", d.path, d.acl));
                for f in &d.files {
                    files.push(format!(
                        "F {}/{} {:?} {:?}",
                        d.path, f.name, f.acl, f.checksum
                    ));
                }
            }
            files.sort();
            (
                p.pkg.name.to_string(),
                (p.pkg.version.to_string(), p.pkg.identity.to_string(), files),
            )
        })
        .collect()
}

fn scripts_view(root: &Path) -> BTreeMap<(apk::package::Checksum, String), (String, Vec<u8>)> {
    let data = std::fs::read(root.join("lib/apk/db/scripts.tar")).unwrap();
    apk::db::scripts::parse(&data)
        .unwrap()
        .into_iter()
        .map(|(k, s)| (k, (s.name_version, s.body)))
        .collect()
}

fn compare(oracle_root: &Path, ours: &Path) {
    let mut a = snapshot(oracle_root);
    let mut b = snapshot(ours);
    for dev in ["console", "null", "random", "urandom", "zero"] {
        let n = a
            .remove(&format!("dev/{dev}"))
            .unwrap_or_else(|| panic!("v2 --initdb should have made dev/{dev}"));
        assert_eq!(n.kind, "chr");
    }
    assert!(
        a.remove("lib/apk/db/lock").is_some(),
        "v2 leaves its lock file"
    );
    b.remove("var/log/apk.log");
    for (p, v2, v3) in [("lib/apk/exec", 0o700, 0o755), ("proc", 0o555, 0o755)] {
        if let (Some(x), Some(y)) = (a.get_mut(p), b.get_mut(p)) {
            assert_eq!((x.mode, y.mode), (v2, v3), "{p}");
            x.mode = y.mode;
        }
    }
    for f in ["lib/apk/db/installed", "lib/apk/db/scripts.tar"] {
        a.remove(f).unwrap();
        b.remove(f).unwrap();
    }
    let mut diffs = Vec::new();
    for (k, v) in &a {
        match b.get(k) {
            None => diffs.push(format!("only in apk-tools: {k} {v:?}")),
            Some(w) if w != v => diffs.push(format!(
                "differs: {k}\n  apk-tools: {v:?}\n  ours:      {w:?}"
            )),
            _ => {}
        }
    }
    for (k, v) in &b {
        if !a.contains_key(k) {
            diffs.push(format!("only in ours: {k} {v:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    let (da, db) = (db_view(oracle_root), db_view(ours));
    assert_eq!(
        da.keys().collect::<Vec<_>>(),
        db.keys().collect::<Vec<_>>(),
        "installed package names"
    );
    for (name, va) in &da {
        assert_eq!(va, &db[name], "installed database entry of {name}");
    }
    assert_eq!(
        scripts_view(oracle_root),
        scripts_view(ours),
        "scripts.tar content"
    );
    for f in ["lib/apk/db/triggers", "etc/apk/world", "etc/apk/arch"] {
        assert_eq!(
            std::fs::read(oracle_root.join(f)).unwrap(),
            std::fs::read(ours.join(f)).unwrap(),
            "{f}"
        );
    }
}

fn alpine_case(name: &str, pkgs: &[String]) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let repo = alpine_repo();
    let (o, ours, _m) = install_both(
        name,
        &[(&repo, "/media/apks")],
        &[repo.to_string_lossy().into_owned()],
        &[alpine_keys()],
        pkgs,
    );
    compare(&o, &ours);
    let db = db_view(&ours);
    assert!(db.len() >= pkgs.len());
    let _ = std::fs::remove_dir_all(&ours);
}

#[test]
fn alpine_base_matches_apk_tools() {
    alpine_case("base", &["alpine-base".to_string()]);
}

/// Every installable package of the medium (four conflict with ifupdown-ng).
#[test]
fn all_96_packages_match_apk_tools() {
    let buf = std::fs::read(alpine_repo().join("x86_64/APKINDEX.tar.gz")).unwrap();
    let idx =
        apk::archive::open_index(&buf, &apk::trust::Keyring::load(&alpine_keys()), false).unwrap();
    let mut names: Vec<String> = apk::index::parse(&idx.text)
        .packages
        .into_iter()
        .map(|p| p.name.to_string())
        .filter(|n| !["vlan", "bonding", "bridge", "network-extras"].contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 96);
    alpine_case("all96", &names);
}

/// A third-party repository made by abuild: packages signed with unpublished keys, trusted
/// through the index signed with antkss.rsa.pub. Dependencies come from the Alpine medium.
#[test]
fn abuild_repository_matches_apk_tools() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ab = abuild_repo();
    let pkgs: Vec<String> = ["gcompat-musl", "hcxdumptool", "libglvnd"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // apk v2 only knows URL/<arch>/APKINDEX.tar.gz and URL/<pkg arch>/<file>: bind the flat
    // repository under both arch names. Our apk takes the index path directly (v3 rule).
    let repo = alpine_repo();
    let (o, ours, _m) = install_both(
        "abuild",
        &[
            (&repo, "/media/apks"),
            (&ab, "/media/abuild/x86_64"),
            (&ab, "/media/abuild/noarch"),
        ],
        &[
            repo.to_string_lossy().into_owned(),
            ab.join("APKINDEX.tar.gz").to_string_lossy().into_owned(),
        ],
        &[alpine_keys(), ab.join("antkss.rsa.pub")],
        &pkgs,
    );
    compare(&o, &ours);
    let db = db_view(&ours);
    for p in &pkgs {
        assert!(db.contains_key(p), "{p} installed");
    }
    let _ = std::fs::remove_dir_all(&ours);
}

/// `(name, version)` pairs a transaction installs, sorted.
type Installs = Vec<(String, String)>;

/// `apk add --simulate WORLD` on an empty installed state against Alpine 3.19's real `main` and
/// `community` indexes, with apk-tools and with ours: the `(name, version)` pairs each would
/// install.
fn simulate_real_indexes(world: &[&str]) -> (Installs, Installs) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let o = oracle();
    let idx = shared().join("fixtures/alpine-3.19-indexes");
    let mut mounts = Mounts(Vec::new());
    bind(&idx, &o.join("media/idx"), &mut mounts);
    let roots = [
        o.join("roots/simulate"),
        std::env::temp_dir().join(format!("apk-ours-{}-simulate", std::process::id())),
    ];
    for r in &roots {
        let _ = std::fs::remove_dir_all(r);
        std::fs::create_dir_all(r.join("lib/apk/db")).unwrap();
        std::fs::create_dir_all(r.join("etc/apk/keys")).unwrap();
        std::fs::write(r.join("lib/apk/db/installed"), "").unwrap();
        std::fs::write(r.join("etc/apk/world"), "").unwrap();
        std::fs::write(r.join("etc/apk/arch"), "x86_64\n").unwrap();
        for e in std::fs::read_dir(alpine_keys()).unwrap().flatten() {
            std::fs::copy(e.path(), r.join("etc/apk/keys").join(e.file_name())).unwrap();
        }
    }
    let theirs = Command::new("chroot")
        .arg(o)
        .args([
            "apk",
            "add",
            "--simulate",
            "--no-network",
            "--root",
            "/roots/simulate",
        ])
        .args([
            "--repository",
            "/media/idx/main",
            "--repository",
            "/media/idx/community",
        ])
        .args(world)
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "oracle: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let mut args = vec![
        "add",
        "--simulate",
        "--no-network",
        "--root",
        roots[1].to_str().unwrap(),
    ];
    let (main, community) = (idx.join("main"), idx.join("community"));
    args.extend([
        "--repository",
        main.to_str().unwrap(),
        "--repository",
        community.to_str().unwrap(),
    ]);
    args.extend_from_slice(world);
    let ours = run_apk(&args);
    assert!(ours.status.success(), "ours: {:?}", text(&ours));
    assert_eq!(text(&ours).1, "", "our apk warned");
    let installs = |out: &[u8]| -> Installs {
        let mut v: Vec<(String, String)> = String::from_utf8_lossy(out)
            .lines()
            .filter_map(|l| l.split_once(") Installing ").map(|(_, r)| r.to_string()))
            .filter_map(|r| {
                let (name, ver) = r.split_once(" (")?;
                Some((name.to_string(), ver.trim_end_matches(')').to_string()))
            })
            .collect();
        v.sort();
        v
    };
    let _ = std::fs::remove_dir_all(&roots[1]);
    (installs(&theirs.stdout), installs(&ours.stdout))
}

/// Alpine 3.19's real indexes, which the loader used to drop whole for one odd entry:
/// `alpine-base` resolves to the same packages and versions as with apk-tools.
#[test]
fn real_indexes_alpine_base_matches_apk_tools() {
    let (theirs, ours) = simulate_real_indexes(&["alpine-base"]);
    assert_eq!(theirs.len(), 25, "{theirs:?}");
    assert_eq!(ours, theirs);
}

/// The project's own repository (`make repo`): `$PROJECT_OUT/repo`, default `<workspace>/out/repo`.
fn project_repo() -> PathBuf {
    std::env::var_os("PROJECT_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../out"))
        .join("repo")
}

/// Regression: a file replaced by another package stayed listed under both (the booted system's
/// apk said `/sbin/lbu is owned by alpine-conf` although the project's `lbu`, which replaces
/// alpine-conf, had installed it). apk-tools moves the file to the replacing package.
#[test]
fn replaced_file_moves_to_the_replacing_package_as_in_apk_tools() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = project_repo();
    assert!(
        project.join("x86_64/APKINDEX.tar.gz").is_file(),
        "{} missing: run `make repo` first",
        project.display()
    );
    let build_key = project.join("../keys/project-build.rsa.pub");
    let repo = alpine_repo();
    let pkgs = ["alpine-base".to_string(), "lbu".to_string()];
    let (o, ours, _m) = install_both(
        "replaces",
        &[(&repo, "/media/apks"), (&project, "/media/project")],
        &[
            repo.to_string_lossy().into_owned(),
            project.to_string_lossy().into_owned(),
        ],
        &[alpine_keys(), build_key],
        &pkgs,
    );
    compare(&o, &ours);
    let theirs = Command::new("chroot")
        .arg(oracle())
        .args([
            "apk",
            "--root",
            "/roots/replaces",
            "info",
            "-W",
            "/sbin/lbu",
        ])
        .output()
        .unwrap();
    let mine = run_apk(&["--root", ours.to_str().unwrap(), "info", "-W", "/sbin/lbu"]);
    let said = String::from_utf8_lossy(&theirs.stdout).into_owned();
    assert!(said.starts_with("/sbin/lbu is owned by lbu-"), "{said}");
    assert_eq!(text(&mine).0, said);
    let db = db_view(&ours);
    assert!(
        !db["alpine-conf"]
            .2
            .iter()
            .any(|f| f.starts_with("F sbin/lbu ")),
        "alpine-conf still lists sbin/lbu"
    );
    let _ = std::fs::remove_dir_all(&ours);
}

/// `apk add --no-chown` (apk-tools 2.14's option; v3 keeps it beside `--usermode`): files keep
/// the extracting user's owner (here root) with the package's modes, directories still get the
/// package's owner, and the database records the package's owners. The same tree and database
/// as apk-tools.
#[test]
fn no_chown_matches_apk_tools() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let repo = alpine_repo();
    // etc/shadow is root:shadow, chrony's directories chrony:chrony and root:wheel.
    let pkgs = ["alpine-base".to_string(), "chrony".to_string()];
    let (o, ours, _m) = install_both_with(
        "nochown",
        &[(&repo, "/media/apks")],
        &[repo.to_string_lossy().into_owned()],
        &[alpine_keys()],
        &["--no-chown"],
        &pkgs,
    );
    compare(&o, &ours);
    // (etc/shadow ends up root:shadow on both sides all the same: a script chowns it.)
    let tree = snapshot(&ours);
    let chrony = &tree["var/lib/chrony"];
    assert_ne!((chrony.uid, chrony.gid), (0, 0), "a directory is chowned");
    let db = db_view(&ours);
    assert!(
        db["alpine-baselayout-data"]
            .2
            .iter()
            .any(|f| f.starts_with("F etc/shadow Acl { uid: 0, gid: 42, mode: 416")),
        "the database keeps the package's owner of etc/shadow"
    );
    let _ = std::fs::remove_dir_all(&ours);
}

/// `apk fix --directory-permissions` resets the owner and mode of every installed directory as
/// apk-tools does, and leaves a directory no package owns alone.
#[test]
fn fix_directory_permissions_matches_apk_tools() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let repo = alpine_repo();
    let (o, ours, _m) = install_both(
        "dirperms",
        &[(&repo, "/media/apks")],
        &[repo.to_string_lossy().into_owned()],
        &[alpine_keys()],
        &["alpine-base".to_string()],
    );
    use std::os::unix::fs::PermissionsExt;
    for root in [&o, &ours] {
        let chmod = |p: &str, m: u32| {
            std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(m)).unwrap()
        };
        chmod("etc/apk", 0o700);
        chmod("tmp", 0o755);
        std::os::unix::fs::chown(root.join("var/empty"), Some(5), Some(5)).unwrap();
        std::fs::create_dir(root.join("foo")).unwrap();
        chmod("foo", 0o700);
    }
    let theirs = Command::new("chroot")
        .arg(oracle())
        .args(["apk", "--root", "/roots/dirperms", "--no-network", "fix"])
        .arg("--directory-permissions")
        .output()
        .unwrap();
    assert!(theirs.status.success(), "{theirs:?}");
    let _ = nix::mount::umount2(&o.join("proc"), nix::mount::MntFlags::MNT_DETACH);
    let mine = run_apk(&[
        "--root",
        ours.to_str().unwrap(),
        "--no-network",
        "fix",
        "--directory-permissions",
    ]);
    let (out, err) = text(&mine);
    assert!(mine.status.success(), "{out}{err}");
    assert!(out.starts_with("OK: "), "{out}");
    let tree = snapshot(&ours);
    assert_eq!(tree["etc/apk"].mode & 0o7777, 0o755);
    assert_eq!(tree["tmp"].mode & 0o7777, 0o1777);
    assert_eq!((tree["var/empty"].uid, tree["var/empty"].gid), (0, 0));
    assert_eq!(
        tree["foo"].mode & 0o7777,
        0o700,
        "a directory no package owns"
    );
    // Every directory the database lists has the same owner and mode on both sides (apk-tools'
    // fix also gives proc the database's 0755, which its --initdb made 0555).
    let theirs_tree = snapshot(&o);
    let dirs: std::collections::BTreeSet<String> = db_view(&ours)
        .values()
        .flat_map(|(_, _, entries)| entries.iter())
        .filter_map(|e| e.strip_prefix("D "))
        .filter_map(|e| e.split(' ').next())
        .filter(|d| !d.is_empty() && !d.starts_with("Acl"))
        .map(str::to_string)
        .collect();
    assert!(dirs.len() > 50, "{dirs:?}");
    // proc: the v2/v3 difference `compare` allows (apk-tools 2.14 leaves its --initdb 0555).
    for d in dirs
        .iter()
        .chain(["foo".to_string()].iter())
        .filter(|d| *d != "proc")
    {
        let (a, b) = (&theirs_tree[d], &tree[d]);
        assert_eq!(
            (a.mode, a.uid, a.gid),
            (b.mode, b.uid, b.gid),
            "{d}: apk-tools vs ours"
        );
    }
    let _ = std::fs::remove_dir_all(&ours);
}
