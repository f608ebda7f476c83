//! The install engine: workers read, verify and inflate packages ahead of the single writer, which
//! applies them strictly in transaction order. How many workers there are and how much they may
//! read ahead must never change the result: the same tree and the same database bytes (installed
//! database, scripts, triggers, world) as one worker. Needs root (package scripts run chrooted).

mod common;

use apk::context::{Access, Context, Options};
use common::*;
use std::path::Path;

/// The 96 packages of the fixture medium that install together.
fn medium_packages() -> Vec<String> {
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
    names
}

/// Install `pkgs` into a fresh `root` through the library with the given engine settings.
fn install(root: &Path, pkgs: &[String], jobs: usize, in_flight: u64) {
    std::fs::create_dir_all(root).unwrap();
    install_keys(root);
    let opts = Options {
        root: root.to_path_buf(),
        initdb: true,
        no_network: true,
        repositories: vec![alpine_repo().to_string_lossy().into_owned()],
        jobs,
        in_flight,
        ..Default::default()
    };
    let quiet = apk::output::Out {
        verbosity: 0,
        ..Default::default()
    };
    let mut ctx = Context::open(opts, Access::Writable, quiet).unwrap();
    let report = apk::ops::add(&mut ctx, pkgs, &Default::default()).unwrap();
    assert_eq!(report.errors, 0, "jobs {jobs}, in flight {in_flight}");
    assert!(report.packages >= pkgs.len());
    drop(ctx);
    let _ = nix::mount::umount2(&root.join("proc"), nix::mount::MntFlags::MNT_DETACH);
}

/// A fresh scratch tmpfs for one test (as the boot installs into one), unmounted on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("apk-engine-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &d,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        Scratch(d)
    }

    fn join(&self, p: &str) -> std::path::PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

const DB_FILES: [&str; 4] = [
    "lib/apk/db/installed",
    "lib/apk/db/scripts.tar",
    "lib/apk/db/triggers",
    "etc/apk/world",
];

/// One worker, one per CPU, many workers with a budget smaller than any package: the same tree
/// and byte-identical database files.
#[test]
fn any_number_of_workers_and_any_budget_install_the_same() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root (scripts run chrooted)"
    );
    let pkgs = medium_packages();
    let tmp = Scratch::new("same");
    let serial = tmp.join("serial");
    install(&serial, &pkgs, 1, 0);
    let reference = snapshot(&serial);
    assert!(reference.len() > 2000, "{} paths", reference.len());
    for (name, jobs, in_flight) in [("cpus", 0, 0), ("tiny-budget", 4, 1)] {
        let root = tmp.join(name);
        install(&root, &pkgs, jobs, in_flight);
        let tree = snapshot(&root);
        let differ: Vec<&String> = reference
            .keys()
            .chain(tree.keys())
            .filter(|k| reference.get(*k) != tree.get(*k))
            .collect();
        assert!(differ.is_empty(), "{name}: paths differ: {differ:?}");
        for f in DB_FILES {
            assert!(
                std::fs::read(serial.join(f)).unwrap() == std::fs::read(root.join(f)).unwrap(),
                "{name}: {f} differs from the one-worker install"
            );
        }
    }
}

/// A package that fails verification in the middle of a parallel install stops only that package:
/// it is named, nothing of it is written, and the packages before and after it install.
#[test]
fn a_corrupt_package_in_the_middle_is_named_and_not_written() {
    assert!(nix::unistd::geteuid().is_root());
    let tmp = Scratch::new("corrupt");
    // A copy of the medium with one package's data section damaged (its last bytes flipped).
    let repo = tmp.join("repo");
    std::fs::create_dir_all(repo.join("x86_64")).unwrap();
    for e in std::fs::read_dir(alpine_repo().join("x86_64"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), repo.join("x86_64").join(e.file_name())).unwrap();
    }
    let victim = std::fs::read_dir(repo.join("x86_64"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("chrony-4")
        })
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 64..n - 32] {
        *b ^= 0x55;
    }
    std::fs::write(&victim, bytes).unwrap();
    let root = tmp.join("root");
    std::fs::create_dir_all(&root).unwrap();
    install_keys(&root);
    let opts = Options {
        root: root.clone(),
        initdb: true,
        no_network: true,
        repositories: vec![repo.to_string_lossy().into_owned()],
        jobs: 4,
        in_flight: 1,
        ..Default::default()
    };
    let quiet = apk::output::Out {
        verbosity: 0,
        ..Default::default()
    };
    let mut ctx = Context::open(opts, Access::Writable, quiet).unwrap();
    let pkgs: Vec<String> = ["alpine-base", "chrony", "zlib"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let report = apk::ops::add(&mut ctx, &pkgs, &Default::default()).unwrap();
    drop(ctx);
    let _ = nix::mount::umount2(&root.join("proc"), nix::mount::MntFlags::MNT_DETACH);
    assert_eq!(report.errors, 1);
    let installed = std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap();
    assert!(
        !installed.contains("\nP:chrony\n"),
        "chrony recorded: {}",
        installed
            .lines()
            .filter(|l| l.starts_with("P:") || l.starts_with("f:"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(installed.contains("\nP:zlib\n") && installed.contains("P:alpine-base\n"));
    assert!(
        !root.join("usr/sbin/chronyd").exists(),
        "chrony's files written"
    );
    assert!(!root.join("etc/chrony").exists());
}
