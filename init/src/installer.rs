//! The package installer of the real boot: the embedded apk core, called in-process (never an
//! external apk). Equivalent of Alpine's `apk add --root /sysroot --initramfs-diskless-boot
//! --no-network [--clean-protected [--overlay-from-stdin]] <packages>`; apk's own lines
//! (`( 1/25) Installing ...`, `Executing ...`, `OK: ...`) go straight to the console (PID 1's
//! stdout), so no separate progress bar is drawn.

use crate::install::{InstallProgress, InstallReport, InstallRequest, PackageInstaller};
use crate::step::StepError;
use apk::context::{Access, Context, Options};
use apk::extract::OverlayList;
use apk::output::Out;

/// [`PackageInstaller`] backed by the `apk` crate.
#[derive(Debug, Default)]
pub struct ApkInstaller;

/// apk options for a boot install request.
pub fn options(req: &InstallRequest) -> Options {
    Options {
        root: req.root.clone(),
        repositories: req
            .repositories
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        keys_dir: Some(req.keys_dir.clone()),
        no_network: req.no_network,
        cache_dir: req.cache_dirs.iter().find(|d| d.is_dir()).cloned(),
        clean_protected: req.clean_protected,
        overlay: req
            .overlay_files
            .as_ref()
            .map(|f| OverlayList::parse(&f.join("\n"))),
        diskless_boot: req.initramfs_diskless_boot,
        initdb: true,
        arch: Some(req.arch.clone()),
        // One bad token in an overlay's world must not leave the box empty: the init already
        // reported it and passes only valid names, but the root's world is read leniently too.
        lenient_world: true,
        ..Default::default()
    }
}

impl PackageInstaller for ApkInstaller {
    fn install(
        &mut self,
        req: &InstallRequest,
        _progress: &mut dyn InstallProgress,
    ) -> Result<InstallReport, StepError> {
        let out = Out {
            verbosity: if req.quiet { 0 } else { 1 },
            width: 80,
            ..Default::default()
        };
        let fail = |reason: String| StepError::Failed {
            subject: format!("install {}", req.packages.join(" ")),
            reason,
        };
        let mut ctx =
            Context::open(options(req), Access::Writable, out).map_err(|e| fail(e.to_string()))?;
        let report = apk::ops::add(&mut ctx, &req.packages, &apk::ops::AddOptions::default())
            .map_err(|e| match e {
                apk::context::Error::Unsatisfiable(block) => {
                    fail(format!("unable to select packages:\n{block}"))
                }
                e => fail(e.to_string()),
            })?;
        if report.errors > 0 {
            let n = report.errors;
            return Err(fail(format!(
                "{n} error{} while installing (see the lines above)",
                if n == 1 { "" } else { "s" }
            )));
        }
        Ok(InstallReport {
            packages: report.packages,
            bytes: report.installed_bytes,
            warnings: Vec::new(),
        })
    }
}
