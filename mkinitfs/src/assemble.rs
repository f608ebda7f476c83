//! The build steps: from a [`Config`] to the [`Image`] tree (Alpine's mkinitfs steps, §6.3 of
//! boot-params.md, minus the staging directory).
//!
//! Order matters only for "first entry wins": fixed entries (base tree, device nodes, `/init`,
//! fstab, passwd/group, keys) go in first, then feature files with their ELF closure, the
//! `rescue` busybox, custom files, kernel modules with regenerated metadata, and firmware.
//! Nothing is read from the build host except the base directory, `-i`, `-f`, the keys
//! directories and (for `rescue`, when the base has none) the host's static busybox.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{Config, DEFAULT_FSTAB};
use crate::elf::Resolver;
use crate::error::{Error, IoResultExt};
use crate::features::{self, Feature};
use crate::image::Image;
use crate::kconfig;
use crate::kmod::{ModuleDb, SoftDep};
use crate::modinfo;
use crate::root::{self, Root};
use crate::tree::{Content, Entry, Node, Tree};

/// Directories every image has (Alpine's base tree plus `tmp`, `sysroot` and `media/*`).
const BASE_DIRS: &[&str] = &[
    "dev",
    "proc",
    "sys",
    "run",
    "tmp",
    "media",
    "media/cdrom",
    "media/floppy",
    "media/usb",
    "etc",
    "etc/apk",
    "sysroot",
    "usr/bin",
    "usr/sbin",
    "usr/lib/modules",
];

/// Alpine's merged-/usr links: modules live at `usr/lib/modules` and are reachable as
/// `/lib/modules`.
const BASE_LINKS: &[(&str, &str)] = &[("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")];

/// `/etc/passwd` of the image (boot-params §6.2).
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/:/sbin/nologin\n";

/// `/etc/group` of the image (boot-params §6.2).
const GROUP: &str = "root:x:0:root\ntty:x:5:\ndisk:x:6:root\nlp:x:7:lp\nkmem:x:9:\nwheel:x:10:root\n\
floppy:x:11:root\nconsole:x:17:\naudio:x:18:\ncdrom:x:19:\ndialout:x:20:root\ninput:x:23:\n\
tape:x:26:root\nvideo:x:27:root\nnetdev:x:28:\nkvm:x:34:\nshadow:x:42:\nping:x:999:\n\
nogroup:x:65533:\nnobody:x:65534:\n";

/// Where busybox comes from for the `rescue` feature when the base directory has none: Debian's
/// `busybox-static`.
const HOST_BUSYBOX: &str = "/bin/busybox";

/// Applet links the `rescue` feature creates next to busybox (in `usr/bin`, which `bin` and the
/// shell's default PATH reach). A fixed list rather than `busybox --list` because the base
/// directory's busybox may not run on the build host; a missing applet only fails when used.
const RESCUE_APPLETS: &[&str] = &[
    "ash", "blkid", "cat", "chmod", "chroot", "cp", "dd", "df", "dmesg", "echo", "find", "free",
    "grep", "gzip", "halt", "head", "ifconfig", "insmod", "ip", "kill", "less", "ln", "ls",
    "lsmod", "mdev", "mkdir", "mknod", "modprobe", "more", "mount", "mv", "poweroff", "ps",
    "reboot", "rm", "rmmod", "sed", "sleep", "switch_root", "sync", "tail", "tar", "udhcpc",
    "umount", "uname", "vi", "wget", "xzcat", "zcat",
];

/// Builds the image tree described by `config`.
pub fn build(config: &Config) -> Result<Image, Error> {
    let root = Root::new(&config.basedir)?;
    let features = features::load(&config.features, &config.feature_dirs)?;
    let mut b = Builder { root: &root, tree: Tree::new(), warnings: Vec::new(), notes: Vec::new() };
    b.base()?;
    b.fixed_files(config)?;
    b.keys(config)?;
    b.feature_files(&features)?;
    if config.features.iter().any(|f| f == "rescue") {
        b.rescue()?;
    }
    for file in &config.custom_files {
        b.tree.add_path(&root, file, true)?;
    }
    if !config.no_modules {
        b.modules(config, &features)?;
    } else if !config.boot_modules.is_empty() {
        b.warnings.push("modules= is set but -n leaves out every module: /etc/modules not written".into());
    }
    Ok(Image::new(b.tree, config.mtime, config.compression, b.warnings, b.notes))
}

struct Builder<'a> {
    root: &'a Root,
    tree: Tree,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Builder<'_> {
    fn base(&mut self) -> Result<(), Error> {
        for (link, target) in BASE_LINKS {
            self.tree.add_symlink(link, target)?;
        }
        for dir in BASE_DIRS {
            let mode = if *dir == "tmp" { 0o1777 } else { 0o755 };
            self.tree.add_dir(dir, mode)?;
        }
        // Device nodes written straight into the archive (no root needed): a static Rust PID 1
        // aborts before main if it cannot open /dev/null (field-notes §4).
        self.tree.insert("dev/console", Entry { node: Node::CharDev(5, 1), mode: 0o600 })?;
        self.tree.insert("dev/null", Entry { node: Node::CharDev(1, 3), mode: 0o666 })?;
        Ok(())
    }

    fn fixed_files(&mut self, config: &Config) -> Result<(), Error> {
        let init = &config.init;
        let meta = fs::metadata(init).at(init)?;
        if !meta.is_file() {
            return Err(Error::BadInput { path: init.clone(), reason: "init is not a regular file".into() });
        }
        let content = Content::Host { path: init.clone(), id: id_of(&meta) };
        self.tree.replace("init", Entry { node: Node::File(content), mode: 0o755 })?;
        match &config.fstab {
            Some(path) => {
                let meta = fs::metadata(path).at(path)?;
                if !meta.is_file() {
                    return Err(Error::BadInput { path: path.clone(), reason: "fstab is not a regular file".into() });
                }
                let content = Content::Host { path: path.clone(), id: id_of(&meta) };
                self.tree.replace("etc/fstab", Entry { node: Node::File(content), mode: 0o644 })?;
            }
            None => self.tree.add_bytes("etc/fstab", DEFAULT_FSTAB, 0o644)?,
        }
        self.tree.add_bytes("etc/passwd", PASSWD, 0o644)?;
        self.tree.add_bytes("etc/group", GROUP, 0o644)?;
        Ok(())
    }

    fn keys(&mut self, config: &Config) -> Result<(), Error> {
        let index_keys = self.copy_keys(&config.keys_dirs, "etc/apk/keys")?;
        self.copy_keys(&config.ovl_keys_dirs, "etc/apkovl/keys")?;
        if index_keys == 0 {
            self.warnings.push(
                "no package index keys embedded (etc/apk/keys is empty): the init cannot verify \
                 the boot repository; pass --keys-dir DIR"
                    .into(),
            );
        }
        Ok(())
    }

    /// Copies every regular file (links followed) of each directory to `dest`; returns the count.
    fn copy_keys(&mut self, dirs: &[PathBuf], dest: &str) -> Result<usize, Error> {
        let mut count = 0;
        for dir in dirs {
            let mut names: Vec<(String, PathBuf)> = Vec::new();
            for entry in fs::read_dir(dir).at(dir)? {
                let entry = entry.at(dir)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                names.push((name, entry.path()));
            }
            names.sort();
            for (name, path) in names {
                let meta = fs::metadata(&path).at(&path)?;
                if !meta.is_file() {
                    continue;
                }
                let content = Content::Host { path, id: id_of(&meta) };
                let (_, added) = self
                    .tree
                    .insert(&format!("{dest}/{name}"), Entry { node: Node::File(content), mode: 0o644 })?;
                if added {
                    count += 1;
                }
            }
        }
        self.tree.add_dir(dest, 0o755)?;
        Ok(count)
    }

    fn feature_files(&mut self, features: &[Feature]) -> Result<(), Error> {
        let mut elves: Vec<String> = Vec::new();
        for feature in features {
            for line in &feature.files {
                let before = elves.len();
                for path in expand_glob(self.root, line)? {
                    elves.extend(self.tree.add_path(self.root, &path, true)?);
                }
                if elves.len() == before && self.tree.get(line.trim_start_matches('/')).is_none() {
                    self.notes.push(format!("{}: {line}: not found in the base directory", feature.name));
                }
            }
        }
        self.elf_closure(elves)
    }

    /// Adds interpreters and needed libraries of `files`, recursively.
    fn elf_closure(&mut self, files: Vec<String>) -> Result<(), Error> {
        let resolver = Resolver::new(self.root)?;
        let mut done: HashSet<String> = HashSet::new();
        // (real path, inherited DT_RPATH of the executable)
        let mut queue: Vec<(String, Vec<String>)> = files.into_iter().map(|f| (f, Vec::new())).collect();
        while let Some((real, inherited)) = queue.pop() {
            if !done.insert(real.clone()) {
                continue;
            }
            let Some(deps) = resolver.deps_of(&real)? else { continue };
            let rpath = if inherited.is_empty() { deps.rpath.clone() } else { inherited.clone() };
            if let Some(interp) = &deps.interpreter {
                let added = self.tree.add_path(self.root, interp, false)?;
                if added.is_empty() && self.root.resolve(interp)?.is_none() {
                    return Err(Error::Elf {
                        path: self.root.host(&real),
                        reason: format!("interpreter {interp} not found in the base directory"),
                    });
                }
                queue.extend(added.into_iter().map(|a| (a, rpath.clone())));
            }
            for name in &deps.needed {
                let Some(lib) = resolver.find_library(name, &real, &deps, &inherited)? else {
                    return Err(Error::Elf {
                        path: self.root.host(&real),
                        reason: format!("needed library {name} not found in the base directory"),
                    });
                };
                let added = self.tree.add_path(self.root, &lib, false)?;
                queue.extend(added.into_iter().map(|a| (a, rpath.clone())));
            }
        }
        Ok(())
    }

    /// `rescue`: a static busybox as `/bin/busybox` with `/bin/sh` pointing at it, for a shell
    /// when the init fails. From the base directory, else Debian's `busybox-static` on the host.
    fn rescue(&mut self) -> Result<(), Error> {
        let in_base = self.root.resolve("bin/busybox")?.filter(|(_, m)| m.is_file());
        if let Some((real, _)) = in_base {
            let files = self.tree.add_path(self.root, "bin/busybox", false)?;
            self.elf_closure(files)?;
            if self.tree.canonical(&real) != "usr/bin/busybox" {
                self.tree.add_symlink("usr/bin/busybox", &format!("/{real}"))?;
            }
        } else {
            let host = Path::new(HOST_BUSYBOX);
            let static_host = match fs::read(host) {
                Ok(bytes) => crate::elf::parse_deps(host, &bytes)?
                    .map(|d| d.interpreter.is_none() && d.needed.is_empty())
                    .unwrap_or(false),
                Err(_) => false,
            };
            if !static_host {
                self.warnings.push(format!(
                    "rescue: no bin/busybox in the base directory and no static {HOST_BUSYBOX} on this host \
                     (install busybox-static): the rescue feature adds nothing"
                ));
                return Ok(());
            }
            let meta = fs::metadata(host).at(host)?;
            let content = Content::Host { path: host.to_path_buf(), id: id_of(&meta) };
            self.tree.insert("usr/bin/busybox", Entry { node: Node::File(content), mode: 0o755 })?;
            self.notes.push(format!("rescue: using the build host's static {HOST_BUSYBOX}"));
        }
        self.tree.replace("usr/bin/sh", Entry { node: Node::Symlink("busybox".into()), mode: 0o777 })?;
        for applet in RESCUE_APPLETS {
            // First wins: a real tool of the same name from a feature is kept.
            self.tree.add_symlink(&format!("usr/bin/{applet}"), "busybox")?;
        }
        Ok(())
    }

    fn modules(&mut self, config: &Config, features: &[Feature]) -> Result<(), Error> {
        let kver = &config.kernel_version;
        let db = ModuleDb::load(&config.basedir, kver)?;
        let mut roots = BTreeSet::new();
        for feature in features {
            let (selected, unmatched) = db.select(&feature.modules);
            roots.extend(selected);
            for line in unmatched {
                self.notes.push(format!("{}: {line}: no module matches (built in or not built)", feature.name));
            }
        }
        for name in &config.boot_modules {
            let found = db.resolve_name(name);
            if found.is_empty() && !db.is_builtin(name) {
                return Err(Error::MissingModule {
                    name: name.clone(),
                    reason: format!("boot module not found in {}", db.dir.display()),
                });
            }
            roots.extend(found);
        }
        let extra = self.fat_softdeps(config, &db, &roots)?;
        let set = db.closure(&roots, &extra)?;
        let base = format!("usr/lib/modules/{kver}");
        for module in &set {
            let host = db.dir.join(module);
            let meta = fs::metadata(&host).at(&host)?;
            self.tree.add_host_file(&root::join(&base, module), host, &meta)?;
        }
        self.tree.add_bytes(&format!("{base}/modules.dep"), db.render_dep(&set), 0o644)?;
        self.tree.add_bytes(&format!("{base}/modules.alias"), db.render_alias(&set), 0o644)?;
        self.tree.add_bytes(&format!("{base}/modules.softdep"), db.render_softdep(&set, &extra), 0o644)?;
        self.tree.add_bytes(&format!("{base}/modules.order"), db.render_order(&set), 0o644)?;
        if let Some(text) = db.builtin_text() {
            self.tree.add_bytes(&format!("{base}/modules.builtin"), text, 0o644)?;
        }
        if let Some(bytes) = db.builtin_modinfo() {
            self.tree.add_bytes(&format!("{base}/modules.builtin.modinfo"), bytes, 0o644)?;
        }
        if !config.boot_modules.is_empty() {
            let mut text = config.boot_modules.join("\n");
            text.push('\n');
            self.tree.add_bytes("etc/modules", text, 0o644)?;
        }
        self.firmware(&db, &set)
    }

    /// vfat and msdos mounts load the NLS tables of the kernel's FAT defaults: express that as
    /// softdeps so the modules are in the image and the init loads them with the filesystem.
    fn fat_softdeps(&mut self, config: &Config, db: &ModuleDb, roots: &BTreeSet<String>) -> Result<Vec<SoftDep>, Error> {
        let fat_users: Vec<String> = ["vfat", "msdos"]
            .iter()
            .filter(|n| db.path_of(n).is_some_and(|p| roots.contains(p)) || db.is_builtin(n))
            .map(|n| n.to_string())
            .collect();
        if fat_users.is_empty() {
            return Ok(Vec::new());
        }
        let defaults = kconfig::fat_defaults(&config.basedir, &config.kernel_version)?;
        if defaults.source.is_none() {
            self.notes.push(format!(
                "no kernel config for {} (boot/config-<kver>, lib/modules/<kver>/config): assuming FAT defaults cp437/iso8859-1",
                config.kernel_version
            ));
        }
        let mut pre = Vec::new();
        for nls in defaults.nls_modules() {
            if db.path_of(&nls).is_some() {
                pre.push(nls);
            } else if !db.is_builtin(&nls) {
                self.warnings.push(format!(
                    "{nls}: needed by vfat mounts (kernel FAT defaults) but neither a module nor built in"
                ));
            }
        }
        if pre.is_empty() {
            return Ok(Vec::new());
        }
        Ok(fat_users.into_iter().map(|module| SoftDep { module, pre: pre.clone(), post: Vec::new() }).collect())
    }

    /// Firmware named by the modules' `.modinfo` (`firmware=`): `NAME`, `NAME.zst` or `NAME.xz`
    /// under `lib/firmware`, symlinks kept. Missing firmware is skipped (noted in debug output).
    fn firmware(&mut self, db: &ModuleDb, set: &BTreeSet<String>) -> Result<(), Error> {
        let modules: Vec<PathBuf> = set.iter().map(|m| db.dir.join(m)).collect();
        let names = read_firmware_names(&modules)?;
        for name in names {
            let mut found = false;
            for suffix in ["", ".zst", ".xz"] {
                let path = format!("lib/firmware/{name}{suffix}");
                if self.root.resolve(&path)?.is_some_and(|(_, m)| m.is_file()) {
                    self.tree.add_path(self.root, &path, false)?;
                    found = true;
                    break;
                }
            }
            if !found {
                self.notes.push(format!("firmware {name}: not found under lib/firmware, skipped"));
            }
        }
        Ok(())
    }
}

fn id_of(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Reads the `firmware=` names of all modules, in parallel (reading and decompressing modules is
/// most of the work); returns them sorted and unique so the result does not depend on timing.
fn read_firmware_names(modules: &[PathBuf]) -> Result<BTreeSet<String>, Error> {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let chunk = modules.len().div_ceil(workers).max(1);
    let results: Vec<Result<Vec<String>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = modules
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut names = Vec::new();
                    for path in part {
                        let bytes = fs::read(path).at(path)?;
                        names.extend(modinfo::firmware(path, bytes)?);
                    }
                    Ok(names)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Setting { key: "firmware".into(), reason: "reader thread panicked".into() })))
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

/// Expands a `.files` line inside the root: glob characters are matched under the base
/// directory (sorted), plain paths are returned as they are.
fn expand_glob(root: &Root, line: &str) -> Result<Vec<String>, Error> {
    let rel = line.trim_start_matches('/');
    if !rel.contains(['*', '?', '[']) {
        return Ok(vec![rel.to_string()]);
    }
    // Expand component by component through Root, so links inside the pattern resolve inside the
    // base directory too.
    let mut current: Vec<String> = vec![String::new()];
    for comp in root::components(rel) {
        let mut next = Vec::new();
        let pattern = glob::Pattern::new(comp).map_err(|e| Error::Setting {
            key: line.to_string(),
            reason: format!("bad glob: {e}"),
        })?;
        let is_glob = comp.contains(['*', '?', '[']);
        for prefix in &current {
            if !is_glob {
                next.push(root::join(prefix, comp));
                continue;
            }
            let Some((real, meta)) = root.resolve(prefix)? else { continue };
            if !meta.is_dir() {
                continue;
            }
            let host = root.host(&real);
            let mut names: Vec<String> = fs::read_dir(&host)
                .at(&host)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| pattern.matches_with(n, glob::MatchOptions { require_literal_leading_dot: true, ..Default::default() }))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| root::join(prefix, &n)));
        }
        current = next;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn globs_expand_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        fs::create_dir_all(b.join("usr/share/x")).unwrap();
        fs::write(b.join("usr/share/x/a.conf"), "").unwrap();
        fs::write(b.join("usr/share/x/b.conf"), "").unwrap();
        fs::write(b.join("usr/share/x/.hidden.conf"), "").unwrap();
        fs::write(b.join("usr/share/x/c.txt"), "").unwrap();
        symlink("/usr/share", b.join("share")).unwrap();
        let root = Root::new(b).unwrap();
        assert_eq!(expand_glob(&root, "/share/x/*.conf").unwrap(), vec!["share/x/a.conf", "share/x/b.conf"]);
        assert_eq!(expand_glob(&root, "/usr/share/*/c.txt").unwrap(), vec!["usr/share/x/c.txt"]);
        assert!(expand_glob(&root, "/nope/*").unwrap().is_empty());
        assert_eq!(expand_glob(&root, "/plain/path").unwrap(), vec!["plain/path"]);
    }
}
