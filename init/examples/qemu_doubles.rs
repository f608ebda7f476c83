//! Test doubles for the qemu tests (not shipped): the real init, with
//! - an installer that copies a prepared tree (`<first boot repository>/fake-root/`) into the new
//!   root instead of installing packages, and
//! - an overlay applier that reads a text manifest instead of a tar (lines `path=content`, `\n`
//!   escapes in content, `-path` for the deletion manifest) and treats a `.sig` containing `good`
//!   as a valid signature, anything else as a bad one.
//!
//! They let `tests/qemu_boot.rs` run the whole executor (overlay policy, world, default services,
//! media naming, deletions, `switch_root`) while the real crates (`apk`, `overlays`) are not linked
//! into the `init` binary yet. The crypto and tar safety are those crates' tests.
use std::path::Path;

use init::install::{InstallProgress, InstallReport, InstallRequest, PackageInstaller, StepError};
use init::overlay::{
    OverlayApplier, OverlayReport, OverlayRequest, PassphrasePrompt, SignatureCheck,
};

struct CopyTree;

/// Copies `src` into `dst`, skipping `keep` (relative paths the overlay provided: apk's
/// `--overlay-from-stdin` protection, which the real installer implements).
fn copy_tree(
    src: &Path,
    dst: &Path,
    rel: &Path,
    keep: &[String],
    bytes: &mut u64,
    files: &mut usize,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let rel = rel.join(e.file_name());
        if keep.iter().any(|k| Path::new(k) == rel) {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&from, &to, &rel, keep, bytes, files)?;
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
        let keep = req.overlay_files.clone().unwrap_or_default();
        copy_tree(
            &src,
            &req.root,
            Path::new(""),
            &keep,
            &mut bytes,
            &mut files,
        )
        .map_err(|e| StepError::Failed {
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

struct ManifestApplier;

fn failed(subject: &Path, reason: impl ToString) -> StepError {
    StepError::Failed {
        subject: subject.display().to_string(),
        reason: reason.to_string(),
    }
}

impl OverlayApplier for ManifestApplier {
    fn apply(
        &mut self,
        req: &OverlayRequest,
        _prompt: &mut dyn PassphrasePrompt,
    ) -> Result<OverlayReport, StepError> {
        let text = std::fs::read_to_string(&req.file).map_err(|e| failed(&req.file, e))?;
        let check = match &req.signature {
            None => SignatureCheck::Unsigned,
            Some(sig) => match std::fs::read_to_string(sig)
                .map_err(|e| failed(sig, e))?
                .trim()
            {
                "good" => SignatureCheck::Verified {
                    key: "test.pub".into(),
                },
                other => SignatureCheck::Bad {
                    reason: format!("test signature says {other:?}"),
                },
            },
        };
        // The contract: ask the init's policy before extracting anything.
        req.judge(&check)?;
        let mut report = OverlayReport {
            signature: check,
            files: Vec::new(),
            bytes: 0,
            deletions: Vec::new(),
            warnings: vec!["manifest applier: test double, not the overlays crate".into()],
        };
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(del) = line.strip_prefix('-') {
                report.deletions.push(del.to_string());
                continue;
            }
            let (path, content) = line
                .split_once('=')
                .ok_or_else(|| failed(&req.file, format!("bad line {line:?}")))?;
            let target = req.root.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| failed(&target, e))?;
            }
            let content = content.replace("\\n", "\n");
            std::fs::write(&target, &content).map_err(|e| failed(&target, e))?;
            report.bytes += content.len() as u64;
            report.files.push(path.to_string());
        }
        Ok(report)
    }

    fn after_install(
        &mut self,
        req: &OverlayRequest,
        report: &OverlayReport,
    ) -> Result<(), StepError> {
        for d in &report.deletions {
            let target = req.root.join(d);
            match std::fs::remove_file(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(&target, e)),
            }
        }
        Ok(())
    }
}

fn main() -> ! {
    init::run(&mut ManifestApplier, &mut CopyTree)
}
