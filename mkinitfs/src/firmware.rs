//! Firmware for the included modules: the `firmware=` names in each module's `.modinfo`, looked
//! up as `NAME`, `NAME.zst` or `NAME.xz` under `lib/firmware` of the base directory (the kernel's
//! firmware loader tries the same suffixes; `.tar.gz` and others do not count). The caller adds
//! the hit with every symlink on its path kept as a link, as Alpine does.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::error::Error;
use crate::modinfo;
use crate::root::Root;

/// Reads the `firmware=` names of all modules, in parallel (reading and decompressing modules is
/// most of the work); returns them sorted and unique so the result does not depend on timing.
pub fn names(modules: &[PathBuf]) -> Result<BTreeSet<String>, Error> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let chunk = modules.len().div_ceil(workers).max(1);
    let results: Vec<Result<Vec<String>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = modules
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut names = Vec::new();
                    for path in part {
                        names.extend(modinfo::firmware_of_file(path)?);
                    }
                    Ok(names)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Setting {
                        key: "firmware".into(),
                        reason: "reader thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut out = BTreeSet::new();
    for r in results {
        out.extend(r?);
    }
    // Firmware names come from module files: refuse ones that would climb out of lib/firmware.
    out.retain(|n| !n.split('/').any(|c| c == ".." || c.is_empty()) && !n.starts_with('/'));
    Ok(out)
}

/// The path (relative to the root) of firmware `name`, trying the suffixes the kernel loads.
pub fn locate(root: &Root, name: &str) -> Result<Option<String>, Error> {
    for suffix in ["", ".zst", ".xz"] {
        let path = format!("{}/{name}{suffix}", bootspec::initramfs::FIRMWARE_DIR);
        if root.resolve(&path)?.is_some_and(|(_, m)| m.is_file()) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn suffixes_in_kernel_order_and_links_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let fw = tmp.path().join("lib/firmware/vendor");
        fs::create_dir_all(&fw).unwrap();
        fs::write(fw.join("a.bin.xz"), b"").unwrap();
        fs::write(fw.join("a.bin.zst"), b"").unwrap();
        fs::write(fw.join("b.bin.tar.gz"), b"").unwrap();
        fs::write(fw.join("c-1.bin"), b"").unwrap();
        symlink("c-1.bin", fw.join("c.bin")).unwrap();
        symlink("nowhere", fw.join("d.bin")).unwrap();
        let root = Root::new(tmp.path()).unwrap();
        assert_eq!(
            locate(&root, "vendor/a.bin").unwrap().as_deref(),
            Some("lib/firmware/vendor/a.bin.zst")
        );
        assert_eq!(locate(&root, "vendor/b.bin").unwrap(), None);
        assert_eq!(
            locate(&root, "vendor/c.bin").unwrap().as_deref(),
            Some("lib/firmware/vendor/c.bin")
        );
        assert_eq!(
            locate(&root, "vendor/d.bin").unwrap(),
            None,
            "dangling link"
        );
    }

    #[test]
    fn names_are_sorted_unique_and_confined() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a.ko");
        let b = tmp.path().join("b.ko");
        fs::write(
            &a,
            modinfo::tests::fake_module(b"firmware=z.bin\0firmware=../x\0firmware=/abs\0"),
        )
        .unwrap();
        fs::write(
            &b,
            modinfo::tests::fake_module(b"firmware=z.bin\0firmware=a/b.bin\0"),
        )
        .unwrap();
        let names: Vec<String> = names(&[a, b]).unwrap().into_iter().collect();
        assert_eq!(names, vec!["a/b.bin", "z.bin"]);
    }
}
