//! `mkimage --repository URL`: the sources come over HTTP from a loopback server serving the
//! fixture repository, through the apk core's client, verified before they are cached; the
//! medium is the same, byte for byte, as one built from the directory. A server that lies fails
//! the build with one line naming the package and URL, and leaves nothing behind.

#[path = "../../apk/tests/common/server.rs"]
mod server;

use server::{Fault, Server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

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
        let key = apk::trust::PrivateKey::generate_ed25519();
        std::fs::write(dir.path().join("medium.key"), key.to_pem().unwrap()).unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Env { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// mkimage of `--world zlib` from `repo` into `out` (a directory medium).
    fn mkimage(&self, repo: &str, out: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mkimage"))
            .env_clear()
            .env("SOURCE_DATE_EPOCH", "1703680496")
            .env("TMPDIR", self.path("tmp"))
            .args([
                "--format",
                "dir",
                "-q",
                "--world",
                "zlib",
                "--repository",
                repo,
                "-o",
            ])
            .arg(out)
            .arg("--keys-dir")
            .arg(self.path("etc/apk/keys"))
            .arg("--sign-key")
            .arg(self.path("medium.key"))
            .output()
            .unwrap()
    }
}

/// Every file under `dir`: relative path -> content.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_url_source_gives_the_same_medium_as_the_directory() {
    let env = Env::new();
    let repo = fixtures().join("alpine-3.19.1/apks");
    let local = env.path("local");
    let o = env.mkimage(repo.to_str().unwrap(), &local);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let server = Server::start(repo.parent().unwrap());
    let url = format!("{}/apks", server.url);
    let remote = env.path("remote");
    let o = env.mkimage(&url, &remote);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(&remote), files(&local));
    // Each file once (the order is the solver's).
    let mut asked = server.requests();
    asked.sort();
    assert_eq!(
        asked,
        vec![
            "GET /apks/x86_64/APKINDEX.tar.gz".to_string(),
            "GET /apks/x86_64/musl-1.2.4_git20230717-r4.apk".to_string(),
            "GET /apks/x86_64/zlib-1.3.1-r0.apk".to_string(),
        ]
    );
    // The scratch cache is gone.
    assert_eq!(std::fs::read_dir(env.path("tmp")).unwrap().count(), 0);

    // --cache-dir keeps the downloads under apk's names, and a second build reuses them.
    let cache = env.path("cache");
    let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .env("SOURCE_DATE_EPOCH", "1703680496")
        .args([
            "--format",
            "dir",
            "-q",
            "--world",
            "zlib",
            "--repository",
            &url,
            "-o",
        ])
        .arg(env.path("again"))
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--keys-dir")
        .arg(env.path("etc/apk/keys"))
        .arg("--sign-key")
        .arg(env.path("medium.key"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".apk"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "musl-1.2.4_git20230717-r4.92a1501d.apk",
            "zlib-1.3.1-r0.d66579f9.apk"
        ]
    );
    assert_eq!(files(&env.path("again")), files(&local));
}

#[test]
fn a_lying_server_fails_the_build_and_leaves_nothing() {
    let env = Env::new();
    let repo = fixtures().join("alpine-3.19.1/apks");
    let server = Server::start(repo.parent().unwrap());
    let url = format!("{}/apks", server.url);
    for (fault, why) in [
        (Fault::FlipByte, "v2 package integrity error"),
        (Fault::Status(404), "HTTP 404 Not Found"),
    ] {
        server.fault("/zlib-1.3.1-r0.apk", fault);
        let out = env.path("out");
        let o = env.mkimage(&url, &out);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!("mkimage: ERROR: zlib-1.3.1-r0: {url}/x86_64/zlib-1.3.1-r0.apk: {why}\n")
        );
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(env.path("tmp")).unwrap().count(), 0);
    }
    server.fault("/APKINDEX.tar.gz", Fault::Status(500));
    let o = env.mkimage(&url, &env.path("out"));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("mkimage: ERROR: {url}/x86_64/APKINDEX.tar.gz: HTTP 500 Internal Server Error\n")
    );
    assert_eq!(std::fs::read_dir(env.path("tmp")).unwrap().count(), 0);
}
