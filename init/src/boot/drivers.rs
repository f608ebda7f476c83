//! The boot drivers phase (docs/boot.md, "Boot drivers"): `modules=`, then what Alpine always
//! asks for (`loop squashfs simpledrm`), then the initramfs's `/etc/modules`. Media discovery
//! loads the rest (coldplug and hotplug modaliases) through the same loader.
use std::path::Path;

use super::{Boot, MAX_CONFIG_BYTES};
use crate::modules::{self, Loader, ModuleDb};
use crate::sys;

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
        // Upstream always asks for these (modloop needs loop + squashfs; simpledrm gives a console).
        loader.load_quietly_all(&["loop", "squashfs", "simpledrm"]);
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
