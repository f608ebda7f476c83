//! The modloop builder (`mkinitfs::modloop`) on a small module tree: Alpine's layout, excludes
//! with regenerated metadata, reproducible bytes. The images are read back with `unsquashfs`.
use std::path::{Path, PathBuf};
use std::process::Command;

use mkinitfs::modloop::{build_modloop, ModloopCompression, ModloopOptions};

const KVER: &str = "6.1.0-99-test";

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// A base directory with four modules, their metadata and two firmware files.
fn basedir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("lib/modules").join(KVER);
    for (rel, body) in [
        ("kernel/net/wireguard/wireguard.ko", "wg"),
        ("kernel/lib/crypto/libchacha.ko", "chacha"),
        ("kernel/drivers/gpu/drm/drm.ko", "drm"),
        ("kernel/drivers/net/ethernet/intel/e1000/e1000.ko", "e1000"),
    ] {
        write(&m.join(rel), body.as_bytes());
    }
    write(
        &m.join("modules.dep"),
        b"kernel/net/wireguard/wireguard.ko: kernel/lib/crypto/libchacha.ko\n\
kernel/lib/crypto/libchacha.ko:\n\
kernel/drivers/gpu/drm/drm.ko:\n\
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:\n",
    );
    write(
        &m.join("modules.alias"),
        b"alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\nalias pci:v*d*sv*sd*bc03sc*i* drm\n",
    );
    write(&m.join("modules.dep.bin"), b"binary index");
    write(
        &m.join("modules.order"),
        b"kernel/drivers/gpu/drm/drm.ko\nkernel/net/wireguard/wireguard.ko\n",
    );
    write(&m.join("modules.builtin"), b"kernel/fs/ext4/ext4.ko\n");
    let fw = d.path().join("lib/firmware");
    write(&fw.join("amdgpu/navi10_sos.bin"), b"amd");
    write(&fw.join("intel/ibt-12-16.sfi"), b"bt");
    d
}

fn options(base: &Path, excludes: &[&str]) -> ModloopOptions {
    ModloopOptions {
        basedir: base.to_path_buf(),
        kernel_version: KVER.into(),
        excludes: excludes.iter().map(|s| s.to_string()).collect(),
        compression: ModloopCompression::Zstd,
        mtime: 1_700_000_000,
    }
}

fn listing(image: &Path) -> Vec<String> {
    let out = Command::new("unsquashfs")
        .args(["-l", "-no-progress", "-d", ""])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(|l| l.trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

fn cat(image: &Path, path: &str) -> String {
    let out = Command::new("unsquashfs")
        .args(["-cat"])
        .arg(image)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn out_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn alpines_layout_with_metadata_copied() {
    let base = basedir();
    let out = tempfile::tempdir().unwrap();
    let image = out_path(&out, "modloop-test");
    let built = build_modloop(&options(base.path(), &[]), &image).unwrap();
    assert_eq!((built.modules, built.firmware, built.excluded), (4, 2, 0));
    assert_eq!(built.size, std::fs::metadata(&image).unwrap().len());
    let l = listing(&image);
    for want in [
        format!("modules/{KVER}/kernel/net/wireguard/wireguard.ko"),
        format!("modules/{KVER}/kernel/drivers/gpu/drm/drm.ko"),
        format!("modules/{KVER}/modules.dep"),
        format!("modules/{KVER}/modules.dep.bin"),
        format!("modules/{KVER}/modules.builtin"),
        "modules/firmware/amdgpu/navi10_sos.bin".into(),
        "modules/firmware/intel/ibt-12-16.sfi".into(),
    ] {
        assert!(l.contains(&want), "{want} missing from {l:?}");
    }
    // Without excludes the metadata is the original, byte for byte.
    assert_eq!(
        cat(&image, &format!("modules/{KVER}/modules.dep")),
        std::fs::read_to_string(
            base.path()
                .join("lib/modules")
                .join(KVER)
                .join("modules.dep")
        )
        .unwrap()
    );
    // Nothing left beside the output.
    let names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("modloop-test")]);
}

#[test]
fn excludes_leave_paths_out_and_regenerate_the_indexes() {
    let base = basedir();
    let out = tempfile::tempdir().unwrap();
    let image = out_path(&out, "modloop-test");
    let built = build_modloop(
        &options(base.path(), &["kernel/drivers/gpu/*", "firmware/amdgpu*"]),
        &image,
    )
    .unwrap();
    assert_eq!((built.modules, built.firmware), (3, 1));
    assert!(built.broken_dependencies.is_empty());
    let l = listing(&image);
    assert!(
        !l.iter().any(|p| p.contains("gpu") || p.contains("amdgpu")),
        "{l:?}"
    );
    assert!(l.contains(&format!("modules/{KVER}/kernel/net/wireguard/wireguard.ko")));
    // The .bin indexes would describe the excluded modules: dropped; the text ones regenerated.
    assert!(!l.contains(&format!("modules/{KVER}/modules.dep.bin")));
    let dep = cat(&image, &format!("modules/{KVER}/modules.dep"));
    assert!(!dep.contains("drm.ko"), "{dep}");
    assert!(dep.contains("kernel/net/wireguard/wireguard.ko: kernel/lib/crypto/libchacha.ko"));
    let alias = cat(&image, &format!("modules/{KVER}/modules.alias"));
    assert!(
        alias.contains(" e1000") && !alias.contains(" drm"),
        "{alias}"
    );
}

#[test]
fn excluding_a_dependency_is_reported() {
    let base = basedir();
    let out = tempfile::tempdir().unwrap();
    let built = build_modloop(
        &options(base.path(), &["kernel/lib/*"]),
        &out_path(&out, "modloop-test"),
    )
    .unwrap();
    assert_eq!(
        built.broken_dependencies,
        vec!["kernel/net/wireguard/wireguard.ko".to_string()]
    );
}

#[test]
fn reproducible_bytes_whatever_the_file_times_and_owners() {
    let base = basedir();
    let out = tempfile::tempdir().unwrap();
    let a = out_path(&out, "a");
    let b = out_path(&out, "b");
    build_modloop(&options(base.path(), &["kernel/drivers/gpu/*"]), &a).unwrap();
    // Touch a module and change its owner: neither may show in the image.
    let wg = base
        .path()
        .join("lib/modules")
        .join(KVER)
        .join("kernel/net/wireguard/wireguard.ko");
    let f = std::fs::File::options().write(true).open(&wg).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    let _ = std::os::unix::fs::chown(&wg, Some(1234), Some(1234));
    build_modloop(&options(base.path(), &["kernel/drivers/gpu/*"]), &b).unwrap();
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two builds differ"
    );
}

#[test]
fn a_missing_kernel_is_one_clear_error() {
    let base = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = build_modloop(&options(base.path(), &[]), &out_path(&out, "m")).unwrap_err();
    assert!(err.to_string().contains(KVER), "{err}");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none());
}
