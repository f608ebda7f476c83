//! `make appliance ALPINE_MIRROR=URL`: the jumphost profile built from an http:// mirror (a
//! loopback server serving the fixture medium, never the internet) is the same image, byte for
//! byte, as from the directory (the default), and apk and mkimage fetch every package once. No
//! qemu boot: tests/profile.rs boots the appliance. The modloop is left out of the profile here:
//! it comes from the build host's kernel, not from the mirror.

use qemu_tests::http::Server;
use qemu_tests::{profile, Env};
use std::path::Path;

/// A copy of the jumphost profile without its `modloop = [...]` setting.
fn jumphost_without_modloop(dir: &Path) {
    let src = profile::jumphost();
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(src.join("rootfs"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(src.join("profile.toml")).unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("modloop") {
            skipping = !line.trim_end().ends_with(']') && line.contains('[');
            continue;
        }
        if skipping {
            skipping = line.trim() != "]";
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(!out.contains("modloop ="), "{out}");
    std::fs::write(dir.join("profile.toml"), out).unwrap();
}

#[test]
fn appliance_from_a_url_mirror_equals_the_directory_build() {
    let env = Env::get();
    let work = tempfile::tempdir().unwrap();
    let prof = work.path().join("jumphost");
    jumphost_without_modloop(&prof);
    profile::build(&prof, &work.path().join("dir.img"), work.path(), &[]);
    let server = Server::start(env.alpine_repo().parent().unwrap());
    let url = format!("http://127.0.0.1:{}/apks", server.port);
    // A fresh cache, so that every package really comes over HTTP.
    let net = work.path().join("net");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::rename(work.path().join("keys"), net.join("keys")).unwrap();
    profile::build(&prof, &work.path().join("url.img"), &net, &[url]);
    let (a, b) = (
        std::fs::read(work.path().join("dir.img")).unwrap(),
        std::fs::read(work.path().join("url.img")).unwrap(),
    );
    assert!(a == b, "the images differ");
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains(&"/apks/x86_64/APKINDEX.tar.gz".to_string()));
    assert!(
        log.iter().any(|p| p.contains("/x86_64/openssh-")),
        "{log:?}"
    );
    // apk and mkimage share one cache: every package was asked for once.
    let mut pkgs: Vec<&String> = log.iter().filter(|p| p.ends_with(".apk")).collect();
    let n = pkgs.len();
    pkgs.sort();
    pkgs.dedup();
    assert_eq!(pkgs.len(), n, "{log:?}");
}
