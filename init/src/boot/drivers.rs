//! The boot drivers phase (docs/boot.md, "Boot drivers"): `modules=`, then the initramfs's
//! `/etc/modules`. Media discovery loads the drivers of the devices through the same loader; what
//! Alpine always asks for ([`ALWAYS`]) loads after it, in the background with the drivers of the
//! other devices, as nothing before the modloop needs it.
use std::path::Path;

use super::{Boot, MAX_CONFIG_BYTES};
use crate::modules::{self, Loader, ModuleDb};
use crate::sys;

/// What upstream's init always loads: the modloop needs `loop` and `squashfs`, `simpledrm` gives
/// a console on the firmware's framebuffer. None of them is needed to find the medium (and
/// `loop`'s eight empty devices would only be more for discovery to probe), so they load in the
/// background after media discovery ([`Boot::load_in_background`]); the finish phase waits for
/// them, before the modloop.
pub(super) const ALWAYS: [&str; 3] = ["loop", "squashfs", "simpledrm"];

impl Boot {
    pub(super) fn load_boot_drivers(&mut self) {
        // A retry: the previous attempt's drivers may still be loading.
        self.settle_drivers();
        if self.loader.is_none() {
            let Some(kver) = sys::kernel_release() else {
                log::warn!("uname: no kernel release; only built-in drivers");
                return;
            };
            let dir = Path::new("/")
                .join(bootspec::initramfs::MODULES_DIR)
                .join(&kver);
            match ModuleDb::load(&dir) {
                Ok(mut db) => {
                    db.add_modprobe_dir(Path::new("/etc/modprobe.d"));
                    self.loader = Some(Loader::new(db, &self.cfg.blacklist));
                }
                Err(e) => {
                    log::warn!("{e}; only built-in drivers are available");
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
    }
}
