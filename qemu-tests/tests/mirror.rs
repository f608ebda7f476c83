//! `make appliance ALPINE_MIRROR=URL`: `scripts/build-appliance.sh` takes Alpine's packages from
//! an http:// mirror (a loopback server serving the fixture medium, never the internet) and builds
//! the same image, byte for byte, as from the directory (the default). No qemu boot: the image
//! itself is what the other appliance scenarios boot.

use qemu_tests::http::Server;
use qemu_tests::Env;
use std::path::Path;
use std::process::Command;

fn build(out: &Path, mirror: Option<&str>) -> Vec<u8> {
    let env = Env::get();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-appliance.sh");
    let mut c = Command::new("bash");
    c.arg(script)
        .arg("jumphost")
        .env("PROJECT_OUT", out)
        .env("SHARED_DIR", env.alpine_repo().join("../../.."))
        .env("SOURCE_DATE_EPOCH", "1703680496")
        .env_remove("ALPINE_MIRROR")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY");
    if let Some(m) = mirror {
        c.env("ALPINE_MIRROR", m);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "build-appliance ({mirror:?}) failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out.join("appliance/jumphost.img")).unwrap()
}

#[test]
fn appliance_from_a_url_mirror_equals_the_directory_build() {
    let env = Env::get();
    // A private output directory with the build's binaries, repository and the public half of
    // the repository's key; the medium and overlay keys are made by the first build and used by
    // both.
    let out = &std::env::temp_dir().join(format!("appliance-mirror-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
    for d in ["bin", "repo"] {
        std::os::unix::fs::symlink(
            env.bin("apk").parent().unwrap().join(format!("../{d}")),
            out.join(d),
        )
        .unwrap();
    }
    std::fs::create_dir(out.join("keys")).unwrap();
    std::fs::copy(
        env.bin("apk")
            .with_file_name("../keys/project-build.rsa.pub"),
        out.join("keys/project-build.rsa.pub"),
    )
    .unwrap();
    let from_dir = build(out, None);
    let server = Server::start(env.alpine_repo().parent().unwrap());
    let url = format!("http://127.0.0.1:{}/apks", server.port);
    let from_url = build(out, Some(&url));
    assert!(from_dir == from_url, "the images differ");
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
    let _ = std::fs::remove_dir_all(out);
}
