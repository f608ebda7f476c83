//! Test double for the qemu tests (not shipped): the real init, with an installer that copies a
//! prepared tree (`<first boot repository>/fake-root/`) into the new root instead of installing
//! packages. It lets `tests/qemu_boot.rs` run the whole executor, through `switch_root`, while the
//! real installer (crate `apk`) is not linked into the `init` binary yet.
use std::path::Path;

use init::install::{InstallProgress, InstallReport, InstallRequest, PackageInstaller, StepError};

struct CopyTree;

fn copy_tree(src: &Path, dst: &Path, bytes: &mut u64, files: &mut usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&from, &to, bytes, files)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else {
            *bytes += std::fs::copy(&from, &to)?;
            *files += 1;
        }
    }
    Ok(())
}

impl PackageInstaller for CopyTree {
    fn install(
        &mut self,
        req: &InstallRequest,
        progress: &mut dyn InstallProgress,
    ) -> Result<InstallReport, StepError> {
        let repo = req.repositories.first().ok_or_else(|| StepError::Failed {
            subject: "copy installer".into(),
            reason: "no boot repository".into(),
        })?;
        let src = repo.join("fake-root");
        let (mut bytes, mut files) = (0, 0);
        copy_tree(&src, &req.root, &mut bytes, &mut files).map_err(|e| StepError::Failed {
            subject: src.display().to_string(),
            reason: e.to_string(),
        })?;
        let world: String = req.packages.iter().map(|p| format!("{p}\n")).collect();
        std::fs::create_dir_all(req.root.join("etc/apk"))
            .and_then(|()| std::fs::write(req.root.join("etc/apk/world"), world))
            .map_err(|e| StepError::Failed {
                subject: "etc/apk/world".into(),
                reason: e.to_string(),
            })?;
        progress.progress(bytes, bytes);
        progress.line(&format!(
            "(1/1) Installing fake-root ({files} files) for: {}",
            req.packages.join(" ")
        ));
        Ok(InstallReport {
            packages: 1,
            bytes,
            warnings: vec!["copy installer: test double, not apk".into()],
        })
    }
}

fn main() -> ! {
    init::run(&mut init::overlay::NotLinkedApplier, &mut CopyTree)
}
