//! Editing files on a FAT medium image in place with mtools (no root, no loop device): what an
//! attacker with the stick, or a user with a card reader, does between two boots. `mkimage`'s
//! USB image is partitioned: its FAT volume starts at 1 MiB ([`PARTITION`]).
use std::path::Path;
use std::process::Command;

/// mtools' suffix for the FAT volume of a USB image: its partition starts at 1 MiB.
pub const PARTITION: &str = "@@1M";

fn mtools(program: &str, image: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(program)
        .arg("-i")
        .arg(format!("{}{PARTITION}", image.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (make deps installs mtools)"));
    assert!(
        out.status.success(),
        "{program} -i {} {args:?}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The bytes of `path` (relative to the top level) on the image.
pub fn read(image: &Path, path: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tmp = dir.path().join("file");
    mtools(
        "mcopy",
        image,
        &["-n", &format!("::/{path}"), &tmp.to_string_lossy()],
    );
    std::fs::read(&tmp).expect("the copied file")
}

/// Writes `path` on the image (replacing it).
pub fn write(image: &Path, path: &str, data: &[u8]) {
    let tmp = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(tmp.path(), data).expect("writing a temporary file");
    mtools(
        "mcopy",
        image,
        &["-o", &tmp.path().to_string_lossy(), &format!("::/{path}")],
    );
}

/// Lets `f` change `path` on the image.
pub fn edit(image: &Path, path: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let mut data = read(image, path);
    f(&mut data);
    write(image, path, &data);
}

/// Renames (or moves over) `from` to `to` on the image.
pub fn rename(image: &Path, from: &str, to: &str) {
    if exists(image, to) {
        remove(image, to);
    }
    mtools("mren", image, &[&format!("::/{from}"), &format!("::/{to}")]);
}

/// Deletes `path` from the image.
pub fn remove(image: &Path, path: &str) {
    mtools("mdel", image, &[&format!("::/{path}")]);
}

/// Whether `path` exists on the image.
pub fn exists(image: &Path, path: &str) -> bool {
    Command::new("mdir")
        .arg("-i")
        .arg(format!("{}{PARTITION}", image.display()))
        .arg("-b")
        .arg(format!("::/{path}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Names at the top level of the image.
pub fn list(image: &Path) -> Vec<String> {
    let out = mtools("mdir", image, &["-b", "::/"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("::/").to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT volume at 1 MiB of an image file, as mkimage's USB image has it.
    fn image(dir: &Path) -> std::path::PathBuf {
        let img = dir.join("disk.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(40 << 20).unwrap();
        let out = Command::new("mkfs.vfat")
            .args(["-F", "32", "--offset", "2048", "-n", "TEST"])
            .arg(&img)
            // The volume's size in KiB: the image after the first MiB.
            .arg((((40 << 20) - (1 << 20)) / 1024).to_string())
            .output()
            .expect("mkfs.vfat (make deps installs dosfstools)");
        assert!(out.status.success(), "{out:?}");
        img
    }

    #[test]
    fn every_helper_works_inside_the_partition() {
        let dir = tempfile::tempdir().unwrap();
        let img = image(dir.path());
        assert!(!exists(&img, "a.txt"));
        write(&img, "a.txt", b"one");
        assert!(exists(&img, "a.txt"), "exists reads the volume at 1 MiB");
        assert_eq!(read(&img, "a.txt"), b"one");
        edit(&img, "a.txt", |d| d.push(b'!'));
        assert_eq!(read(&img, "a.txt"), b"one!");
        write(&img, "b.txt", b"two");
        // Renaming over an existing file replaces it (exists() must see it to remove it first).
        rename(&img, "a.txt", "b.txt");
        assert_eq!(read(&img, "b.txt"), b"one!");
        assert!(!exists(&img, "a.txt"));
        assert_eq!(list(&img), ["b.txt"]);
        remove(&img, "b.txt");
        assert!(list(&img).is_empty());
    }
}
