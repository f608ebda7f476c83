//! The boot drivers phase (docs/boot.md, "Boot drivers"): `modules=`, then the initramfs's
//! `/etc/modules`. Media discovery loads the drivers of the devices through the same loader; what
//! Alpine always asks for ([`ALWAYS`]) loads after it, in the background with the drivers of the
//! other devices, as nothing before the modloop needs it.
use std::path::Path;

use super::{Boot, MAX_CONFIG_BYTES};
use crate::modules::{self, Loader, ModuleDb};
use crate::{media, sys};

/// What upstream's init always loads: the modloop needs `loop` and `squashfs`, `simpledrm` gives
/// a console on the firmware's framebuffer. None of them is needed to find the medium (and
/// `loop`'s eight empty devices would only be more for discovery to probe), so they load in the
/// background after media discovery ([`Boot::load_in_background`]); the finish phase waits for
/// them, before the modloop.
pub(super) const ALWAYS: [&str; 3] = ["loop", "squashfs", "simpledrm"];

/// Filesystem drivers loaded ahead ([`Loader::preload`]) from the end of the boot drivers phase, beside the
/// device drivers media discovery loads, instead of after the device is found and probed (under
/// qemu TCG that took 40-50 ms between the disk appearing and its mount): what boot media carry
/// (vfat on a USB stick or disk image, with the codepages a vfat mount needs; iso9660 on a CD or
/// ISO) and squashfs (the modloop, [`ALWAYS`]). Those the initramfs does not carry are skipped.
/// (Not `loop`: its eight empty devices would only be more for discovery to probe.)
const PRELOAD: [&str; 7] = [
    "vfat",
    media::NLS_MODULES[0],
    media::NLS_MODULES[1],
    media::NLS_MODULES[2],
    media::NLS_MODULES[3],
    "isofs",
    "squashfs",
];

/// The module database as read by [`read_module_db`] (the error is the whole warning line).
pub(super) type ModuleDbRead = Result<ModuleDb, String>;

/// Starts reading the module database in a thread of its own, at the first instant of the boot:
/// it needs no mount (the kernel release comes from `uname`, the files from the initramfs), and
/// the early setup and boot options phases run meanwhile. `None`: no thread could be made (the
/// boot drivers phase reads it then).
pub(super) fn start_reading_module_db() -> Option<std::thread::JoinHandle<ModuleDbRead>> {
    std::thread::Builder::new()
        .name("moduledb".into())
        .spawn(read_module_db)
        .ok()
}

/// Reads `/lib/modules/<release>`'s metadata and the initramfs's `/etc/modprobe.d`.
fn read_module_db() -> ModuleDbRead {
    let kver = sys::kernel_release()
        .ok_or_else(|| "uname: no kernel release; only built-in drivers".to_string())?;
    let dir = Path::new("/")
        .join(bootspec::initramfs::MODULES_DIR)
        .join(&kver);
    let mut db =
        ModuleDb::load(&dir).map_err(|e| format!("{e}; only built-in drivers are available"))?;
    db.add_modprobe_dir(Path::new("/etc/modprobe.d"));
    Ok(db)
}

impl Boot {
    pub(super) fn load_boot_drivers(&mut self) {
        // A retry: the previous attempt's drivers may still be loading.
        self.settle_drivers();
        if self.loader.is_none() {
            // Started with the boot ([`start_reading_module_db`]); read here on a retry, or
            // when that thread could not be made.
            let read = match self.module_db.take().map(|h| h.join()) {
                Some(Ok(read)) => read,
                _ => read_module_db(),
            };
            match read {
                Ok(db) => self.loader = Some(Loader::new(db, &self.cfg.blacklist)),
                Err(e) => {
                    log::warn!("{e}");
                    return;
                }
            }
        }
        let Some(loader) = self.loader.as_mut() else {
            return;
        };
        log::info!("Loading boot drivers");
        let before = loader.loaded().len();
        for m in &self.cfg.modules {
            if let modules::Loaded::NoMatch = loader.load_name(m, "") {
                log::warn!("modules={m}: no such module");
            }
        }
        let etc_modules = bootspec::initramfs::absolute(bootspec::initramfs::MODULES_LIST);
        match sys::read_file(Path::new(&etc_modules), MAX_CONFIG_BYTES) {
            Ok(Some(text)) => {
                for (m, params) in modules::parse_etc_modules(&String::from_utf8_lossy(&text)) {
                    loader.load_name(&m, &params);
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("{e}"),
        }
        let n = loader.loaded().len().saturating_sub(before);
        self.timeline.note(format!("{n} module(s)"));
        // After the explicit loads, so that their parameters apply (a module loading ahead
        // would be found loaded); on a retry, what is not loaded yet.
        loader.preload(&PRELOAD);
    }
}
