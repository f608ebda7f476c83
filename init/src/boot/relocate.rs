//! The media relocation phase (docs/boot.md, "Media: final mount points"): each medium moves to
//! its final `/media/<name>` (the overlay's fstab, else `usb`, `cdrom` or the kernel name,
//! [`plan::media_moves`]) so that `lbu`, the repositories file and fstab see stable names, and
//! the repositories are resolved there.
use std::path::Path;

use super::{Applied, Boot, BootError, Prepared, MAX_CONFIG_BYTES};
use crate::media::Medium;
use crate::plan;
use crate::sys::{self, rootdir::RootDir};

impl Boot {
    /// Moves media to their final `/media/<name>` and resolves the repositories there.
    pub(super) fn relocate_media(
        &mut self,
        media: Vec<Medium>,
        overlay: Option<Applied>,
        root: &RootDir,
    ) -> Result<Prepared, BootError> {
        let overlay_fstab = if overlay.is_some() {
            root.read_string("etc/fstab", MAX_CONFIG_BYTES)?
        } else {
            None
        };
        let home = plan::home_medium(&media, overlay.as_ref().map(|a| a.file.as_path()))
            .map(|m| m.name.clone());
        let moves = plan::media_moves(&media, overlay_fstab.as_deref(), home.as_deref());
        for mv in moves.iter().filter(|m| m.from != m.to) {
            sys::make_dirs(&mv.to)?;
            sys::move_mount(&mv.from, &mv.to)?;
            let _ = std::fs::remove_dir(&mv.from);
            log::debug!("media: {} moved to {}", mv.from.display(), mv.to.display());
        }
        let media: Vec<Medium> = media
            .into_iter()
            .map(|mut m| {
                m.mount_point = plan::relocate(&m.mount_point, &moves);
                m.repositories = m
                    .repositories
                    .iter()
                    .map(|r| plan::relocate(r, &moves))
                    .collect();
                m.overlays = m
                    .overlays
                    .iter()
                    .map(|o| plan::relocate(o, &moves))
                    .collect();
                m.cache = m.cache.as_ref().map(|c| plan::relocate(c, &moves));
                m
            })
            .collect();
        let mut cfg = self.cfg.clone();
        cfg.alpine_repo = cfg
            .alpine_repo
            .iter()
            .map(|r| plan::relocate(Path::new(r), &moves).display().to_string())
            .collect();
        let repositories = plan::repositories(&cfg, &media, &|p: &Path| p.is_dir())?;
        for r in &repositories {
            log::info!("boot repository {}", r.display());
        }
        Ok(Prepared {
            media,
            home,
            overlay,
            repositories,
        })
    }
}
