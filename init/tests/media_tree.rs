//! Discovery logic on directory trees that stand in for mounted media: repository and apkovl
//! detection per medium, then the boot decisions taken from what was found (overlay choice,
//! repositories, mount points, fstab and repositories files).
use std::path::{Path, PathBuf};

use init::cmdline::BootConfig;
use init::media::{medium_from, natural_cmp, scan_top_level, Medium};
use init::plan::{self, Kind, PlanError};
use init::probe::FsInfo;

/// Builds `/media/<name>` trees under a temp dir and turns them into media as discovery would.
struct Media {
    dir: tempfile::TempDir,
    media: Vec<Medium>,
}

impl Media {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            media: Vec::new(),
        }
    }

    fn root(&self, name: &str) -> PathBuf {
        self.dir.path().join("media").join(name)
    }

    /// `files`: paths relative to the medium root; a trailing `/` makes a directory.
    fn add(
        &mut self,
        name: &str,
        fstype: &'static str,
        label: Option<&str>,
        files: &[&str],
    ) -> &Medium {
        let root = self.root(name);
        std::fs::create_dir_all(&root).unwrap();
        for f in files {
            let p = root.join(f.trim_end_matches('/'));
            if f.ends_with('/') {
                std::fs::create_dir_all(&p).unwrap();
            } else {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, b"data").unwrap();
            }
        }
        let contents = scan_top_level(&root).unwrap();
        let fs = FsInfo {
            fstype,
            label: label.map(str::to_string),
            uuid: Some("AB12-CD34".into()),
        };
        self.media.push(medium_from(name, &fs, &root, &contents));
        self.media.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        self.media.iter().find(|m| m.name == name).unwrap()
    }
}

fn kind(p: &Path) -> Option<Kind> {
    std::fs::metadata(p)
        .ok()
        .map(|m| if m.is_file() { Kind::File } else { Kind::Other })
}

/// What mkimage writes (`bootspec::medium`, docs/boot.md "Media").
const ALPINE_MEDIUM: &[&str] = &[
    ".alpine-release",
    "apks/.boot_repository",
    "apks/x86_64/APKINDEX.tar.gz",
    "apks/x86_64/alpine-base-3.21.0-r0.apk",
    "boot/vmlinuz-lts",
    "boot/initramfs-lts",
    "cache/",
];

#[test]
fn standard_medium_with_overlay_and_signature() {
    let mut m = Media::new();
    let mut files = ALPINE_MEDIUM.to_vec();
    files.extend(["fw1.apkovl.tar.gz", "fw1.apkovl.tar.gz.sig"]);
    let medium = m.add("sda1", "vfat", Some("ALPINE"), &files).clone();
    assert_eq!(medium.repositories, vec![m.root("sda1").join("apks")]);
    assert_eq!(
        medium.overlays,
        vec![m.root("sda1").join("fw1.apkovl.tar.gz")]
    );
    assert_eq!(medium.cache, Some(m.root("sda1").join("cache")));

    let cfg = BootConfig::default();
    plan::check_found(&cfg, &m.media, 3).unwrap();
    let choice = plan::choose_overlay(None, &m.media, &kind)
        .unwrap()
        .unwrap();
    assert_eq!(choice.file, m.root("sda1").join("fw1.apkovl.tar.gz"));
    assert_eq!(
        choice.signature,
        Some(m.root("sda1").join("fw1.apkovl.tar.gz.sig"))
    );
    let repos = plan::repositories(&cfg, &m.media, &|p| p.is_dir()).unwrap();
    assert_eq!(repos, vec![m.root("sda1").join("apks")]);
}

#[test]
fn repository_on_cdrom_overlay_on_usb() {
    let mut m = Media::new();
    m.add("sr0", "iso9660", Some("alpine-std"), ALPINE_MEDIUM);
    m.add(
        "sdb1",
        "vfat",
        Some("CFG"),
        &["host.apkovl.tar.gz.age", ".host.apkovl.tar.gz.tmp"],
    );
    let choice = plan::choose_overlay(None, &m.media, &kind)
        .unwrap()
        .unwrap();
    assert_eq!(choice.file, m.root("sdb1").join("host.apkovl.tar.gz.age"));
    assert_eq!(choice.kind, Some(overlays::OverlayKind::Age));
    // Final mount points: the USB stick becomes /media/usb, the CD /media/cdrom.
    let moves = plan::media_moves(&m.media, None, None);
    let to: Vec<_> = moves
        .iter()
        .map(|mv| (mv.name.as_str(), mv.to.display().to_string()))
        .collect();
    assert_eq!(
        to,
        vec![
            ("sdb1", "/media/usb".to_string()),
            ("sr0", "/media/cdrom".to_string())
        ]
    );
}

#[test]
fn second_overlay_on_another_disk_is_refused_without_selector() {
    let mut m = Media::new();
    m.add(
        "sda1",
        "vfat",
        Some("ALPINE"),
        &[ALPINE_MEDIUM, &["a.apkovl.tar.gz"]].concat(),
    );
    m.add("sdb1", "ext4", None, &["b.apkovl.tar.gz"]);
    assert!(
        matches!(plan::choose_overlay(None, &m.media, &kind), Err(PlanError::AmbiguousOverlay(v)) if v.len() == 2)
    );
    let sel = init::cmdline::ApkovlSpec::parse(&format!(
        "{}",
        m.root("sdb1").join("b.apkovl.tar.gz").display()
    ));
    let choice = plan::choose_overlay(Some(&sel), &m.media, &kind)
        .unwrap()
        .unwrap();
    assert_eq!(choice.file, m.root("sdb1").join("b.apkovl.tar.gz"));
}

#[test]
fn medium_without_anything_is_not_a_boot_medium() {
    let mut m = Media::new();
    let medium = m
        .add(
            "vda",
            "ext4",
            None,
            &["home/user/file", "boot/", "fake/.boot_repository/"],
        )
        .clone();
    assert!(medium.repositories.is_empty() && medium.overlays.is_empty());
    assert_eq!(
        plan::check_found(&BootConfig::default(), &[], 1),
        Err(PlanError::NoMedium(1))
    );
}

#[test]
fn fstab_and_repositories_for_relocated_media() {
    let mut m = Media::new();
    m.add("sda1", "vfat", Some("ALPINE"), ALPINE_MEDIUM);
    let mut moves = plan::media_moves(&m.media, None, None);
    // The trees live under a temp dir; map their real mount point to the name the boot chooses.
    moves[0].from = m.root("sda1");
    let repo = plan::relocate(&m.media[0].repositories[0], &moves);
    assert_eq!(repo, PathBuf::from("/media/usb/apks"));
    assert_eq!(plan::repositories_file(&[repo]), "/media/usb/apks\n");
    let fstab = plan::update_fstab(
        "/dev/cdrom /media/cdrom iso9660 noauto,ro 0 0\n",
        &[(&m.media[0], Path::new("/media/usb"))],
    )
    .unwrap();
    assert!(
        fstab.ends_with("LABEL=ALPINE /media/usb vfat noauto,ro 0 0\n"),
        "{fstab}"
    );
}
