//! Remote repositories over a real HTTP(S) server on loopback (`common::server`), serving the
//! fixture repository: installing over HTTP gives the same root as from the directory; every way
//! a server or the path to it can lie (a flipped byte, a truncated or stalled body, an error
//! status, a redirect loop, an oversized file) gives one clear error naming the URL and leaves
//! the root and the cache as they were; HTTPS with a test CA; proxies from the environment; an
//! offline install from a warm cache; and the output of `update`, `search`, `policy`, `fetch` and
//! `cache`, compared exactly.

mod common;

use common::server::{Fault, Proxy, Server, TestCa};
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture medium (`apks/` below it) as the server's document root.
fn medium() -> PathBuf {
    alpine_repo().parent().unwrap().to_path_buf()
}

struct Root {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// An empty root with Alpine's keys and an installed database; `cache`: `etc/apk/cache` exists.
fn new_root(cache: bool) -> Root {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root");
    install_keys(&path);
    if cache {
        std::fs::create_dir_all(path.join("etc/apk/cache")).unwrap();
    }
    let o = apk(&path, &["--initdb", "fix"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    Root { _dir: dir, path }
}

fn apk(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(apk_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// stdout, stderr and the exit code.
fn run(root: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, String, i32) {
    let o = apk(root, args, env);
    let (out, err) = text(&o);
    (out, err, o.status.code().unwrap_or(-1))
}

fn repo_url(s: &Server) -> String {
    format!("{}/apks", s.url)
}

fn index_url(s: &Server) -> String {
    format!("{}/apks/x86_64/APKINDEX.tar.gz", s.url)
}

/// Everything under the root except the cache directories.
fn tree(root: &Path) -> BTreeMap<String, Node> {
    snapshot(root)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("etc/apk/cache") && !k.starts_with("var/cache/apk/"))
        .collect()
}

/// The paths where two snapshots differ (empty when equal).
fn diff(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} vs {:?}", a.get(k), b.get(k)))
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The cache names apk-tools 2.14 (SHA-1) and v3 (SHA-256) give the index of `url`.
fn cached_index_names(url: &str) -> Vec<String> {
    let spec = apk::repo::RepoSpec::parse(url).unwrap();
    let mut v = apk::cache::index_write_names(&spec, "x86_64").to_vec();
    v.sort();
    v
}

#[test]
fn install_over_http_matches_the_directory_and_works_offline_from_the_cache() {
    let local = new_root(false);
    let (out_local, err, code) = run(
        &local.path,
        &["-X", alpine_repo().to_str().unwrap(), "add", "alpine-base"],
        &[],
    );
    assert_eq!((code, err.as_str()), (0, ""), "{out_local}");

    let server = Server::start(&medium());
    let remote = new_root(true);
    let (out_remote, err, code) = run(
        &remote.path,
        &["-X", &repo_url(&server), "add", "alpine-base"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, format!("fetch {}\n", index_url(&server)));
    assert_eq!(out_remote, out_local);
    assert_eq!(
        diff(&tree(&remote.path), &tree(&local.path)),
        Vec::<String>::new()
    );
    // The index under both apk-tools names, each package under its cache name, nothing else.
    let cache = remote.path.join("etc/apk/cache");
    let mut want = cached_index_names(&repo_url(&server));
    let db = std::fs::read_to_string(remote.path.join("lib/apk/db/installed")).unwrap();
    let pool_names: Vec<String> = apk::db::installed::parse(&db)
        .unwrap()
        .iter()
        .map(|ip| apk::cache::package_name(&ip.pkg))
        .collect();
    assert_eq!(pool_names.len(), 25);
    want.extend(pool_names);
    want.sort();
    assert_eq!(names(&cache), want);
}

#[test]
fn no_network_installs_from_a_warm_cache() {
    let server = Server::start(&medium());
    let url = repo_url(&server);
    let warm = new_root(true);
    let (_, err, code) = run(&warm.path, &["-X", &url, "add", "zlib"], &[]);
    assert_eq!(code, 0, "{err}");
    drop(server);
    let offline = new_root(true);
    let cache = warm.path.join("etc/apk/cache");
    for n in names(&cache) {
        std::fs::copy(cache.join(&n), offline.path.join("etc/apk/cache").join(&n)).unwrap();
    }
    let (out, err, code) = run(
        &offline.path,
        &["--no-network", "-X", &url, "add", "zlib"],
        &[],
    );
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert_eq!(
        out,
        "(1/2) Installing musl (1.2.4_git20230717-r4)\n(2/2) Installing zlib (1.3.1-r0)\nOK: 760 KiB in 2 packages\n"
    );
    assert_eq!(
        diff(&tree(&offline.path), &tree(&warm.path)),
        Vec::<String>::new()
    );
    // A package the cache lacks is masked, as apk says.
    let (_, err, code) = run(
        &offline.path,
        &["--no-network", "-X", &url, "add", "busybox"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("masked in: --no-network"), "{err}");
}

/// Each misbehaviour of the server, on the zlib package: the error line, then the root and the
/// cache exactly as before.
#[test]
fn lying_servers_install_nothing() {
    let server = Server::start(&medium());
    let url = repo_url(&server);
    let root = new_root(true);
    let (_, err, code) = run(&root.path, &["-X", &url, "update"], &[]);
    assert_eq!(code, 0, "{err}");
    let before = snapshot(&root.path);
    let pkg_url = format!("{url}/x86_64/zlib-1.3.1-r0.apk");
    let busybox = alpine_repo().join("x86_64/busybox-1.36.1-r15.apk");
    let zlib_size = std::fs::metadata(alpine_repo().join("x86_64/zlib-1.3.1-r0.apk"))
        .unwrap()
        .len();
    let cases: Vec<(Fault, String)> = vec![
        (Fault::FlipByte, "v2 package integrity error".into()),
        (
            Fault::Truncate,
            format!("truncated: {} of {zlib_size} bytes received", zlib_size / 2),
        ),
        (Fault::Stall, "timed out (no data)".into()),
        // A byte every 200 ms is never a second of silence: the minimum rate ends it.
        (
            Fault::Trickle,
            "too slow: under 1024 bytes/s for 1 s".into(),
        ),
        (Fault::Status(404), "HTTP 404 Not Found".into()),
        (Fault::Status(500), "HTTP 500 Internal Server Error".into()),
        (
            Fault::RedirectLoop,
            format!("too many redirects (last: {pkg_url})"),
        ),
        (
            Fault::Serve(busybox),
            format!("larger than the {zlib_size} bytes allowed"),
        ),
    ];
    for (fault, why) in cases {
        server.fault("/zlib-1.3.1-r0.apk", fault.clone());
        let (out, err, code) = run(
            &root.path,
            &["--timeout", "1", "-X", &url, "add", "zlib"],
            &[],
        );
        assert_eq!(
            (out.as_str(), err.as_str(), code),
            (
                "1 error; 0 B in 0 packages\n",
                format!("ERROR: zlib-1.3.1-r0: {pkg_url}: {why}\n").as_str(),
                1
            ),
            "{fault:?}"
        );
        assert_eq!(
            diff(&snapshot(&root.path), &before),
            Vec::<String>::new(),
            "{fault:?} changed the root"
        );
    }
    server.clear_faults();
    let (_, err, code) = run(&root.path, &["-X", &url, "add", "zlib"], &[]);
    assert_eq!((code, err.as_str()), (0, ""));
}

#[test]
fn retries_are_bounded_and_only_for_transient_failures() {
    let server = Server::start(&medium());
    let url = repo_url(&server);
    let root = new_root(true);
    let count = |s: &Server| {
        s.requests()
            .iter()
            .filter(|r| r.ends_with("/APKINDEX.tar.gz"))
            .count()
    };
    server.fault("/APKINDEX.tar.gz", Fault::Status(503));
    let (_, err, code) = run(&root.path, &["-X", &url, "update"], &[]);
    assert_eq!(code, 1);
    assert!(err.ends_with(&format!(
        "WARNING: updating and opening {}: HTTP 503 Service Unavailable\n",
        index_url(&server)
    )));
    assert_eq!(count(&server), 3, "one try and two retries");
    server.fault("/APKINDEX.tar.gz", Fault::Status(404));
    run(&root.path, &["-X", &url, "update"], &[]);
    assert_eq!(count(&server), 4, "a 404 is final");
}

/// A tampered or unsigned index is refused and never replaces the cached one.
#[test]
fn tampered_indexes_never_reach_the_cache() {
    let server = Server::start(&medium());
    let url = repo_url(&server);
    let root = new_root(true);
    let (out, err, code) = run(&root.path, &["-X", &url, "update"], &[]);
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        (
            format!("3.19.1 [{url}]\nOK: 100 distinct packages available\n").as_str(),
            format!("fetch {}\n", index_url(&server)).as_str(),
            0
        )
    );
    let cache = root.path.join("etc/apk/cache");
    let before = snapshot(&cache);
    server.fault("/APKINDEX.tar.gz", Fault::FlipByte);
    let (out, err, code) = run(&root.path, &["-X", &url, "update"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!("3.19.1 [{url}]\n0 unavailable, 1 stale; 100 distinct packages available\n")
    );
    let warning = err.lines().nth(1).unwrap();
    assert!(
        warning.starts_with(&format!("WARNING: updating {}: ", index_url(&server))),
        "{err}"
    );
    assert_eq!(diff(&snapshot(&cache), &before), Vec::<String>::new());
    // An index signed by nobody we trust.
    let untrusted = abuild_repo().join("APKINDEX.tar.gz");
    server.fault("/APKINDEX.tar.gz", Fault::Serve(untrusted));
    let (_, err, _) = run(&root.path, &["-X", &url, "update"], &[]);
    assert!(
        err.ends_with(&format!(
            "WARNING: updating {}: UNTRUSTED signature\n",
            index_url(&server)
        )),
        "{err}"
    );
    assert_eq!(diff(&snapshot(&cache), &before), Vec::<String>::new());
    // No cache at all: the index is read straight from the network.
    let (out, err, code) = run(
        &root.path,
        &["--no-cache", "-X", &url, "search", "zlib"],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "");
    assert!(err.contains(&format!(
        "WARNING: fetching {}: UNTRUSTED signature",
        index_url(&server)
    )));
}

#[test]
fn https_with_a_test_ca() {
    let ca = TestCa::new();
    let server = Server::start_tls(&medium(), ca.config.clone());
    let url = repo_url(&server);
    assert!(url.starts_with("https://"));
    let root = new_root(true);
    let ca_file = root.path.join("test-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    // Not trusted: the handshake fails and says why.
    let (_, err, code) = run(&root.path, &["-X", &url, "update"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "fetch {0}\nWARNING: updating and opening {0}: TLS: invalid peer certificate: UnknownIssuer\n",
            index_url(&server)
        )
    );
    // --ca: installs.
    let (out, err, code) = run(
        &root.path,
        &["--ca", ca_file.to_str().unwrap(), "-X", &url, "add", "zlib"],
        &[],
    );
    assert_eq!(
        (code, err.as_str()),
        (0, format!("fetch {}\n", index_url(&server)).as_str()),
        "{out}"
    );
    assert!(out.ends_with("OK: 760 KiB in 2 packages\n"));
    // SSL_CERT_FILE does the same.
    let (_, err, code) = run(
        &root.path,
        &["-X", &url, "update"],
        &[("SSL_CERT_FILE", ca_file.to_str().unwrap())],
    );
    assert_eq!((code, err.lines().count()), (0, 1), "{err}");
    // A CA file that is not one is an error naming it.
    let (_, err, code) = run(
        &root.path,
        &["--ca", "/dev/null", "-X", &url, "update"],
        &[],
    );
    assert_eq!(
        (code, err.as_str()),
        (1, "ERROR: /dev/null: no PEM certificate in it\n")
    );
    // Review finding: an https mirror could hand the transfer to plain http by a redirect.
    let plain = Server::start(&medium());
    server.fault(
        "/apks/x86_64/APKINDEX.tar.gz",
        Fault::Redirect(index_url(&plain)),
    );
    let (_, err, code) = run(
        &root.path,
        &["--ca", ca_file.to_str().unwrap(), "-X", &url, "update"],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "redirect from https to http refused ({})",
            index_url(&plain)
        )),
        "{err}"
    );
}

#[test]
fn proxies_from_the_environment() {
    let server = Server::start(&medium());
    let proxy = Proxy::start();
    let url = repo_url(&server);
    let root = new_root(true);
    let target = format!("CONNECT 127.0.0.1:{}", server.port);
    let (_, err, code) = run(
        &root.path,
        &["-X", &url, "update"],
        &[("http_proxy", proxy.url.as_str())],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(proxy.requests(), vec![target.clone()]);
    // https_proxy is for https:// only; no_proxy bypasses.
    run(
        &root.path,
        &["-X", &url, "update"],
        &[("https_proxy", proxy.url.as_str())],
    );
    run(
        &root.path,
        &["-X", &url, "update"],
        &[
            ("http_proxy", proxy.url.as_str()),
            ("no_proxy", "localhost,127.0.0.1"),
        ],
    );
    assert_eq!(proxy.requests(), vec![target.clone()]);
    // The upper-case spelling works too.
    let (_, err, code) = run(
        &root.path,
        &["-X", &url, "add", "zlib"],
        &[("HTTP_PROXY", proxy.url.as_str())],
    );
    assert_eq!(code, 0, "{err}");
    // The index is fresh in the cache: only the two packages go through the proxy.
    assert_eq!(proxy.requests().len(), 3);
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn applets_update_search_policy() {
    let server = Server::start(&medium());
    let url = repo_url(&server);
    let root = new_root(false);
    let r = &root.path;
    // update: the index goes to var/cache/apk when etc/apk/cache does not exist.
    let (out, _, code) = run(r, &["-X", &url, "update"], &[]);
    assert_eq!(
        (out.as_str(), code),
        (
            format!("3.19.1 [{url}]\nOK: 100 distinct packages available\n").as_str(),
            0
        )
    );
    assert_eq!(names(&r.join("var/cache/apk")), cached_index_names(&url));
    // Fresh cache: no download (the default --cache-max-age is 4 hours), -U forces one.
    let asked = server.requests().len();
    let (_, err, _) = run(r, &["-X", &url, "search", "zlib"], &[]);
    assert_eq!((err.as_str(), server.requests().len()), ("", asked));
    let (_, err, _) = run(r, &["-U", "-X", &url, "search", "zlib"], &[]);
    assert_eq!(err, format!("fetch {}\n", index_url(&server)));
    assert_eq!(server.requests().len(), asked + 1);
    let (_, _, code) = run(r, &["-q", "-X", &url, "update"], &[]);
    assert_eq!(code, 0);

    let search = |args: &[&str]| {
        let mut a = vec!["-X", url.as_str(), "search"];
        a.extend_from_slice(args);
        run(r, &a, &[]).0
    };
    assert_eq!(
        search(&["busy"]),
        "busybox-1.36.1-r15\nbusybox-binsh-1.36.1-r15\nbusybox-mdev-openrc-1.36.1-r15\nbusybox-openrc-1.36.1-r15\nbusybox-suid-1.36.1-r15\n"
    );
    assert_eq!(
        search(&["-v", "busybox-s"]),
        "busybox-suid-1.36.1-r15 - suid binaries of Busybox\n"
    );
    assert_eq!(search(&["-q", "busybox-s"]), "busybox-suid\n");
    assert_eq!(search(&["-x", "busybox"]), "busybox-1.36.1-r15\n");
    assert_eq!(search(&["-e", "busybox"]), search(&["--exact", "busybox"]));
    assert_eq!(search(&["-e", "busy"]), "");
    assert_eq!(search(&["-a", "zlib"]), "zlib-1.3.1-r0\n");
    assert_eq!(
        search(&["-d", "suid binaries"]),
        "busybox-suid-1.36.1-r15\n"
    );
    assert_eq!(search(&["-o", "-x", "ssl_client"]), "busybox-1.36.1-r15\n");
    assert_eq!(search(&[]).lines().count(), 100);

    let (out, err, code) = run(
        r,
        &[
            "-X",
            &url,
            "-X",
            "@local",
            "-X",
            &format!("@mirror {url}"),
            "policy",
            "zlib",
            "nosuch",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("zlib policy:\n  1.3.1-r0:\n    {url}\n    @mirror {url}\n")
    );
}

#[test]
fn applet_fetch() {
    let server = Server::start(&medium());
    let url = repo_url(&server);
    let root = new_root(false);
    let r = &root.path;
    let out_dir = r.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let o = out_dir.to_str().unwrap();
    let (out, err, code) = run(r, &["-X", &url, "fetch", "-o", o, "zlib", "musl"], &[]);
    assert_eq!(
        (out.as_str(), code),
        (
            "Downloading musl-1.2.4_git20230717-r4\nDownloading zlib-1.3.1-r0\n",
            0
        ),
        "{err}"
    );
    for f in ["musl-1.2.4_git20230717-r4.apk", "zlib-1.3.1-r0.apk"] {
        assert_eq!(
            std::fs::read(out_dir.join(f)).unwrap(),
            std::fs::read(alpine_repo().join("x86_64").join(f)).unwrap()
        );
    }
    // Already there with the right size: skipped silently.
    let (out, _, code) = run(r, &["-X", &url, "fetch", "-o", o, "zlib"], &[]);
    assert_eq!((out.as_str(), code), ("", 0));
    // -R --simulate lists the closure, sorted, and writes nothing (musl and zlib are there).
    let (out, _, code) = run(
        r,
        &[
            "-X",
            &url,
            "fetch",
            "-R",
            "--simulate",
            "-o",
            o,
            "alpine-base",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 23);
    assert!(out.starts_with(
        "Downloading alpine-base-3.19.1-r0\nDownloading alpine-baselayout-3.4.3-r2\n"
    ));
    assert_eq!(names(&out_dir).len(), 2);
    // --url prints where a package comes from.
    let (out, _, _) = run(r, &["-X", &url, "fetch", "--url", "-o", o, "busybox"], &[]);
    assert_eq!(out, format!("{url}/x86_64/busybox-1.36.1-r15.apk\n"));
    // Unknown names: reported on stdout, nothing fetched, one error each.
    let (out, _, code) = run(
        r,
        &["-X", &url, "fetch", "-o", o, "nosuch", "alpine-base"],
        &[],
    );
    assert_eq!(
        (out.as_str(), code),
        (
            "nosuch: unable to select package (or its dependencies)\n",
            1
        )
    );
    assert!(!out_dir.join("alpine-base-3.19.1-r0.apk").exists());
    // --stdout (-s): the bytes of the package.
    let o2 = apk(r, &["-X", &url, "fetch", "-s", "zlib"], &[]);
    assert_eq!(
        o2.stdout,
        std::fs::read(alpine_repo().join("x86_64/zlib-1.3.1-r0.apk")).unwrap()
    );
    // -l from a local repository: a hard link when on the same file system.
    let local = r.join("local/x86_64");
    std::fs::create_dir_all(&local).unwrap();
    for f in [
        "APKINDEX.tar.gz",
        "zlib-1.3.1-r0.apk",
        "musl-1.2.4_git20230717-r4.apk",
    ] {
        std::fs::copy(alpine_repo().join("x86_64").join(f), local.join(f)).unwrap();
    }
    let linked = r.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    let (_, err, code) = run(
        r,
        &[
            "-X",
            r.join("local").to_str().unwrap(),
            "fetch",
            "-l",
            "-o",
            linked.to_str().unwrap(),
            "zlib",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(linked.join("zlib-1.3.1-r0.apk"))
            .unwrap()
            .ino(),
        std::fs::metadata(local.join("zlib-1.3.1-r0.apk"))
            .unwrap()
            .ino()
    );
    // A tampered download is refused and not written.
    server.fault("/musl-1.2.4_git20230717-r4.apk", Fault::FlipByte);
    let fresh = r.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let (_, err, code) = run(
        r,
        &["-X", &url, "fetch", "-o", fresh.to_str().unwrap(), "musl"],
        &[],
    );
    assert_eq!(
        (err.as_str(), code),
        (
            format!("ERROR: musl-1.2.4_git20230717-r4: {url}/x86_64/musl-1.2.4_git20230717-r4.apk: v2 package integrity error\n").as_str(),
            1
        )
    );
    assert!(names(&fresh).is_empty());
}

#[test]
fn applet_cache() {
    let server = Server::start(&medium());
    let url = repo_url(&server);
    let root = new_root(true);
    let r = &root.path;
    let cache = r.join("etc/apk/cache");
    let (_, err, code) = run(r, &["-X", &url, "add", "zlib"], &[]);
    assert_eq!(code, 0, "{err}");
    let installed = names(&cache);
    assert_eq!(installed.len(), 4);
    // clean: junk and packages nobody has go, the rest stays.
    std::fs::write(cache.join("junk.txt"), "x").unwrap();
    std::fs::write(cache.join("bogus-1.0-r0.12345678.apk"), "x").unwrap();
    let (out, err, code) = run(r, &["-v", "-X", &url, "cache", "clean"], &[]);
    assert_eq!((out.as_str(), code), ("", 0));
    assert_eq!(
        err,
        "deleting bogus-1.0-r0.12345678.apk\ndeleting junk.txt\n"
    );
    assert_eq!(names(&cache), installed);
    // purge: every package (the root is not a tmpfs), the indexes stay.
    let (_, err, code) = run(r, &["-X", &url, "--root-tmpfs=no", "cache", "purge"], &[]);
    assert_eq!((err.as_str(), code), ("", 0));
    assert_eq!(names(&cache), cached_index_names(&url));
    // download: what the world needs, verified; sync = clean + download.
    let (out, err, code) = run(r, &["-X", &url, "cache", "download"], &[]);
    assert_eq!((out.as_str(), err.as_str(), code), ("", "", 0));
    assert_eq!(names(&cache), installed);
    let (_, err, code) = run(r, &["-X", &url, "cache", "download", "busybox"], &[]);
    assert_eq!((err.as_str(), code), ("", 0));
    assert_eq!(names(&cache).len(), 5);
    std::fs::write(cache.join("junk.txt"), "x").unwrap();
    server.fault("/zlib-1.3.1-r0.apk", Fault::Status(404));
    std::fs::remove_file(
        cache.join(
            names(&cache)
                .into_iter()
                .find(|n| n.starts_with("zlib"))
                .unwrap(),
        ),
    )
    .unwrap();
    let (_, err, code) = run(r, &["-X", &url, "cache", "sync"], &[]);
    assert_eq!(
        (err.as_str(), code),
        (
            format!("ERROR: zlib-1.3.1-r0: {url}/x86_64/zlib-1.3.1-r0.apk: HTTP 404 Not Found\n")
                .as_str(),
            1
        )
    );
    assert!(!cache.join("junk.txt").exists());
    // Without an active cache only the index cache is cleaned.
    let plain = new_root(false);
    run(&plain.path, &["-X", &url, "update"], &[]);
    std::fs::write(plain.path.join("var/cache/apk/junk"), "x").unwrap();
    let (_, err, code) = run(&plain.path, &["-X", &url, "cache", "sync"], &[]);
    assert_eq!((err.as_str(), code), ("", 0));
    assert_eq!(
        names(&plain.path.join("var/cache/apk")),
        cached_index_names(&url)
    );
}

#[test]
fn help_for_the_network_applets() {
    for applet in ["update", "fetch", "search", "cache", "policy"] {
        let o = run_apk(&[applet, "--help"]);
        assert!(o.status.success(), "{applet}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains(&format!("Usage: apk {applet}")),
            "{applet}: {out}"
        );
    }
    let o = run_apk(&["--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--ca <FILE>",
        "--timeout <SECONDS>",
        "--cache-max-age <AGE>",
        "--update-cache",
    ] {
        assert!(out.contains(opt), "{opt}");
    }
}
