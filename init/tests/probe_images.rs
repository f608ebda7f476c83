//! Superblock probing on filesystem images made here with the host tools, compared with what
//! `blkid -o export -p` says about the same image (TYPE, LABEL, UUID).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use init::probe::{probe_path, FsInfo, Probe};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `blkid -o export -p IMAGE` as a map (values unescaped).
fn blkid(image: &Path) -> BTreeMap<String, String> {
    let out = Command::new("blkid")
        .args(["-o", "export", "-p"])
        .arg(image)
        .output()
        .expect("blkid");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("\\ ", " ").replace("\\\\", "\\")))
        .collect()
}

fn image(dir: &Path, name: &str, size_mb: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(size_mb << 20).unwrap();
    p
}

fn fs_of(path: &Path) -> FsInfo {
    match probe_path(path).unwrap() {
        Probe::Filesystem(fs) => fs,
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// Our TYPE/LABEL/UUID must equal blkid's.
fn assert_same_as_blkid(path: &Path) -> FsInfo {
    let ours = fs_of(path);
    let theirs = blkid(path);
    assert_eq!(
        Some(ours.fstype),
        theirs.get("TYPE").map(String::as_str),
        "TYPE of {}",
        path.display()
    );
    assert_eq!(
        ours.label.as_deref(),
        theirs.get("LABEL").map(String::as_str),
        "LABEL of {}",
        path.display()
    );
    assert_eq!(
        ours.uuid.as_deref(),
        theirs.get("UUID").map(String::as_str),
        "UUID of {}",
        path.display()
    );
    ours
}

#[test]
fn vfat_fat12_fat16_fat32_match_blkid() {
    let dir = tempfile::tempdir().unwrap();
    for (fat, size, label, serial) in [
        ("12", 2, "SMALL", "0a0b0c0d"),
        ("16", 40, "ALPINE", "1234abcd"),
        ("32", 64, "BIG STICK", "deadbeef"),
    ] {
        let img = image(dir.path(), &format!("fat{fat}.img"), size);
        run(Command::new("mkfs.vfat")
            .args(["-F", fat, "-n", label, "-i", serial])
            .arg(&img));
        let fs = assert_same_as_blkid(&img);
        assert_eq!(fs.label.as_deref(), Some(label));
        assert_eq!(
            fs.uuid
                .as_deref()
                .map(|u| u.replace('-', "").to_lowercase()),
            Some(serial.to_string())
        );
    }
}

#[test]
fn vfat_label_lives_in_the_root_directory_on_fat32_after_files() {
    // Files written before the label entry is scanned: the label must still be found by
    // following the root directory (FAT32 keeps it in a cluster chain).
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "fat32.img", 64);
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "CFG"])
        .arg(&img));
    let src = dir.path().join("host.apkovl.tar.gz");
    std::fs::write(&src, b"x").unwrap();
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&img)
        .arg(&src)
        .arg("::/host.apkovl.tar.gz"));
    assert_eq!(assert_same_as_blkid(&img).label.as_deref(), Some("CFG"));
}

#[test]
fn vfat_without_label() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "nolabel.img", 40);
    run(Command::new("mkfs.vfat").arg(&img));
    assert_eq!(assert_same_as_blkid(&img).label, None);
}

#[test]
fn ext2_ext3_ext4_match_blkid() {
    let dir = tempfile::tempdir().unwrap();
    for (mkfs, label, uuid) in [
        ("mkfs.ext2", "e2lab", "11111111-2222-4333-8444-555555555555"),
        ("mkfs.ext3", "e3lab", "0a1b2c3d-0000-4000-8000-123456789abc"),
        (
            "mkfs.ext4",
            "alpine-data",
            "fedcba98-7654-4321-8fed-cba987654321",
        ),
    ] {
        let img = image(dir.path(), &format!("{mkfs}.img"), 16);
        run(Command::new(mkfs)
            .args(["-q", "-F", "-L", label, "-U", uuid])
            .arg(&img));
        let fs = assert_same_as_blkid(&img);
        assert_eq!(fs.fstype, &mkfs[5..]);
        assert_eq!(fs.uuid.as_deref(), Some(uuid));
    }
}

#[test]
fn iso9660_primary_and_joliet_match_blkid() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(content.join("apks")).unwrap();
    std::fs::write(content.join("apks/.boot_repository"), b"").unwrap();
    for (name, extra, label) in [
        ("plain.iso", vec![], "alpine-std 3.21"),
        ("joliet.iso", vec!["-J"], "lower Case"),
        ("long.iso", vec!["-J"], "My Long Disk Label With"),
    ] {
        let iso = dir.path().join(name);
        run(Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet"])
            .args(&extra)
            .args(["-V", label, "-o"])
            .arg(&iso)
            .arg(&content));
        let fs = assert_same_as_blkid(&iso);
        assert_eq!(fs.fstype, "iso9660");
        let uuid = fs.uuid.unwrap();
        // YYYY-MM-DD-HH-MM-SS-CC
        assert_eq!(uuid.len(), 22, "{uuid}");
        assert_eq!(uuid.matches('-').count(), 6, "{uuid}");
    }
}

#[test]
fn squashfs_matches_blkid() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("modloop");
    std::fs::create_dir_all(content.join("modules")).unwrap();
    std::fs::write(content.join("modules/x"), b"x").unwrap();
    let img = dir.path().join("modloop-lts");
    run(Command::new("mksquashfs")
        .arg(&content)
        .arg(&img)
        .args(["-quiet", "-noappend"]));
    let fs = assert_same_as_blkid(&img);
    assert_eq!(
        fs,
        FsInfo {
            fstype: "squashfs",
            label: None,
            uuid: None
        }
    );
}

#[test]
fn partitioned_disk_is_a_partition_table_not_a_filesystem() {
    // An MBR with one FAT partition at 1 MiB: the whole disk is a partition table; the partition
    // (read at its offset) is vfat.
    let dir = tempfile::tempdir().unwrap();
    let part = image(dir.path(), "part.img", 40);
    run(Command::new("mkfs.vfat")
        .args(["-F", "16", "-n", "PART"])
        .arg(&part));
    let data = std::fs::read(&part).unwrap();
    let mut disk = vec![0u8; (1 << 20) + data.len()];
    disk[(1 << 20)..].copy_from_slice(&data);
    let e = 446;
    disk[e] = 0x80;
    disk[e + 4] = 0x0e;
    disk[e + 8..e + 12].copy_from_slice(&2048u32.to_le_bytes());
    disk[e + 12..e + 16].copy_from_slice(&((data.len() / 512) as u32).to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xAA;
    let disk_path = dir.path().join("disk.img");
    std::fs::write(&disk_path, &disk).unwrap();
    assert_eq!(
        probe_path(&disk_path).unwrap(),
        Probe::PartitionTable("dos")
    );
    assert_eq!(
        blkid(&disk_path).get("PTTYPE").map(String::as_str),
        Some("dos")
    );
    // The same disk with a GPT header.
    disk[e + 4] = 0xEE;
    disk[512..520].copy_from_slice(b"EFI PART");
    std::fs::write(&disk_path, &disk).unwrap();
    assert_eq!(
        probe_path(&disk_path).unwrap(),
        Probe::PartitionTable("gpt")
    );
}

#[test]
fn isohybrid_style_disk_is_iso9660() {
    // An iso9660 image that also carries an MBR (as isohybrid images do) is a filesystem on the
    // whole disk, as blkid reports it.
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("c");
    std::fs::create_dir_all(&content).unwrap();
    let iso = dir.path().join("hybrid.iso");
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", "HYBRID", "-o"])
        .arg(&iso)
        .arg(&content));
    let mut data = std::fs::read(&iso).unwrap();
    data[446] = 0x80;
    data[446 + 4] = 0x17;
    data[446 + 8..446 + 12].copy_from_slice(&0u32.to_le_bytes());
    let sectors = (data.len() / 512) as u32;
    data[446 + 12..446 + 16].copy_from_slice(&sectors.to_le_bytes());
    data[510] = 0x55;
    data[511] = 0xAA;
    std::fs::write(&iso, &data).unwrap();
    assert_eq!(fs_of(&iso).label.as_deref(), Some("HYBRID"));
}

#[test]
fn truncated_and_garbage_images_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path(), "e.img", 16);
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "x"])
        .arg(&img));
    let data = std::fs::read(&img).unwrap();
    for cut in [0usize, 100, 1024, 1100, 2047, 4096] {
        let p = dir.path().join(format!("cut{cut}"));
        std::fs::write(&p, &data[..cut]).unwrap();
        let _ = probe_path(&p).unwrap();
    }
    let fat = image(dir.path(), "f.img", 40);
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "X"])
        .arg(&fat));
    let mut data = std::fs::read(&fat).unwrap();
    // Point the root cluster into nowhere and corrupt the FAT: still no panic.
    data[0x2C..0x30].copy_from_slice(&0x0FFF_FFF0u32.to_le_bytes());
    let p = dir.path().join("badroot");
    std::fs::write(&p, &data[..70000]).unwrap();
    assert!(matches!(
        probe_path(&p).unwrap(),
        Probe::Filesystem(FsInfo {
            fstype: "vfat",
            label: None,
            ..
        })
    ));
    assert!(probe_path(Path::new("/nonexistent/device"))
        .unwrap_err()
        .to_string()
        .starts_with("/nonexistent/device: "));
}
