//! The host's kernel, which every VM boots: Debian's `/boot/vmlinuz-<kver>` with its modules in
//! `/lib/modules/<kver>` (what mkinitfs takes modules from).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An installed kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// `/boot/vmlinuz-<kver>`.
    pub image: PathBuf,
    /// The release (`6.1.0-28-amd64`), naming `/lib/modules/<kver>`.
    pub kver: String,
}

impl Kernel {
    /// The newest kernel with both an image in `/boot` and a module tree with `modules.dep`.
    /// Panics with the package to install when there is none (make deps installs it).
    pub fn host() -> &'static Kernel {
        static HOST: OnceLock<Kernel> = OnceLock::new();
        HOST.get_or_init(|| {
            let mut kvers: Vec<String> = std::fs::read_dir("/lib/modules")
                .expect("/lib/modules (make deps installs linux-image-amd64)")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|k| {
                    Path::new(&format!("/boot/vmlinuz-{k}")).is_file()
                        && Path::new("/lib/modules").join(k).join("modules.dep").is_file()
                })
                .collect();
            kvers.sort();
            let kver = kvers
                .pop()
                .expect("an installed kernel: /boot/vmlinuz-<kver> and /lib/modules/<kver>/modules.dep (make deps)");
            Kernel {
                image: PathBuf::from(format!("/boot/vmlinuz-{kver}")),
                kver,
            }
        })
    }
}
