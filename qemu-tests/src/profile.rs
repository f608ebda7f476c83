//! Appliance profiles built as `make appliance` builds them: `mkimage --profile DIR` with Alpine's
//! keys and the project's build key trusted (the `lbu` package of `$PROJECT_OUT/repo`), the
//! fixture medium or a given mirror, and keys generated once per test directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::Env;

/// The time stamp of every profile build in the tests (reproducible images).
pub const EPOCH: &str = "1703680496";

/// Alpine's public keys and the project's build key, as the Makefile's `out/trusted-keys`.
pub fn trusted_keys(env: &Env, dir: &Path) -> PathBuf {
    let keys = dir.join("trusted-keys");
    std::fs::create_dir_all(&keys).unwrap();
    for e in std::fs::read_dir(env.alpine_keys()).unwrap().flatten() {
        std::fs::copy(e.path(), keys.join(e.file_name())).unwrap();
    }
    let build_key = env.out.join("keys/project-build.rsa.pub");
    std::fs::copy(&build_key, keys.join("project-build.rsa.pub"))
        .unwrap_or_else(|e| panic!("{}: {e} (make builds it)", build_key.display()));
    keys
}

/// `mkimage --profile PROFILE -o OUTPUT` from `mirrors` (default: the fixture medium) and the
/// project's repository, keys in `work/keys` (generated on first use), downloads cached in
/// `work/cache`. Panics with mkimage's output when it fails.
pub fn build(profile: &Path, output: &Path, work: &Path, mirrors: &[String]) -> Output {
    let env = Env::get();
    let trusted = trusted_keys(env, work);
    let mut c = Command::new(env.bin("mkimage"));
    c.arg("--profile")
        .arg(profile)
        .arg("-o")
        .arg(output)
        .arg("--keys-dir")
        .arg(&trusted)
        .arg("--generate-keys")
        .arg(work.join("keys"))
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY");
    let default = [env.alpine_repo().to_string_lossy().into_owned()];
    let mirrors = if mirrors.is_empty() {
        &default[..]
    } else {
        mirrors
    };
    for m in mirrors {
        c.arg("--mirror").arg(m);
    }
    c.arg("--mirror").arg(env.out.join("repo"));
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "mkimage --profile {} failed:\n{}\n{}",
        profile.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The project's example appliance, `appliances/jumphost`.
pub fn jumphost() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliances/jumphost")
}
