//! The build steps: from a [`Config`] to the [`Image`] tree (Alpine's mkinitfs steps, minus the
//! staging directory; the README's "What the image holds for the init").
//!
//! Order matters only for "first entry wins": fixed entries (base tree, device nodes, `/init`,
//! fstab, passwd/group, the boot policy, keys and the overlay identity) go in first, then feature
//! files with their ELF closure, the `rescue` busybox, custom files, kernel modules with
//! regenerated metadata, and firmware. Nothing is read from the build host except the base
//! directory, `-i`, `-f`, the keys directories, the overlay identity and (for `rescue`, when the
//! base has none) the host's static busybox. Last, every file of the tree is checked for private
//! keys ([`crate::secret`]): only public keys may enter an image, except the age identity the
//! user embeds on purpose.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use bootspec::initramfs::{
    APKOVL_IDENTITY, APKOVL_KEYS, APK_KEYS, FIRMWARE_DIR, MODULES_DIR, MODULES_LIST, POLICY,
};

use crate::config::{Config, DEFAULT_FSTAB};
use crate::elf::Resolver;
use crate::error::{Error, IoResultExt};
use crate::features::{self, Feature};
use crate::firmware;
use crate::image::Image;
use crate::kconfig;
use crate::modules::ModuleDb;
use crate::root::{self, Root};
use crate::secret::{self, Secret};
use crate::tree::{Content, Entry, Node, Tree};
use kmod::SoftDep;

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

/// `/etc/passwd` of the image (Alpine's base entries).
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/:/sbin/nologin\n";

/// `/etc/group` of the image (Alpine's base groups, which device nodes refer to).
const GROUP: &str =
    "root:x:0:root\ntty:x:5:\ndisk:x:6:root\nlp:x:7:lp\nkmem:x:9:\nwheel:x:10:root\n\
floppy:x:11:root\nconsole:x:17:\naudio:x:18:\ncdrom:x:19:\ndialout:x:20:root\ninput:x:23:\n\
tape:x:26:root\nvideo:x:27:root\nnetdev:x:28:\nkvm:x:34:\nshadow:x:42:\nping:x:999:\n\
nogroup:x:65533:\nnobody:x:65534:\n";

/// Where busybox comes from for the `rescue` feature when the base directory has none: Debian's
/// `busybox-static`.
const HOST_BUSYBOX: &str = "/bin/busybox";
/// The CA bundle the init reads (`apk::http::SYSTEM_BUNDLE`).
const CA_BUNDLE: &str = apk::http::SYSTEM_BUNDLE;
/// Largest `--ca` file (Mozilla's whole bundle is about 220 KiB).
const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// Applet links the `rescue` feature creates next to busybox (in `usr/bin`, which `bin` and the
/// shell's default PATH reach). A fixed list rather than `busybox --list` because the base
/// directory's busybox may not run on the build host; a missing applet only fails when used.
const RESCUE_APPLETS: &[&str] = &[
    "ash",
    "blkid",
    "cat",
    "chmod",
    "chroot",
    "cp",
    "dd",
    "df",
    "dmesg",
    "echo",
    "find",
    "free",
    "grep",
    "gzip",
    "halt",
    "head",
    "ifconfig",
    "insmod",
    "ip",
    "kill",
    "less",
    "ln",
    "ls",
    "lsmod",
    "mdev",
    "mkdir",
    "mknod",
    "modprobe",
    "more",
    "mount",
    "mv",
    "poweroff",
    "ps",
    "reboot",
    "rm",
    "rmmod",
    "sed",
    "sleep",
    "switch_root",
    "sync",
    "tail",
    "tar",
    "udhcpc",
    "umount",
    "uname",
    "vi",
    "wget",
    "xzcat",
    "zcat",
];

/// Builds the image tree described by `config`.
pub fn build(config: &Config) -> Result<Image, Error> {
    let start = Instant::now();
    let root = Root::new(&config.basedir)?;
    let features = features::load(&config.features, &config.feature_dirs)?;
    let mut b = Builder {
        root: &root,
        tree: Tree::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    b.base()?;
    b.fixed_files(config)?;
    b.tree.add_bytes(POLICY, config.policy.render(), 0o644)?;
    b.keys(config)?;
    if let Some(identity) = &config.ovl_identity {
        b.identity(identity)?;
    }
    b.feature_files(&features)?;
    if config.features.iter().any(|f| f == "rescue") {
        b.rescue()?;
    }
    for file in &config.custom_files {
        b.tree.add_path(&root, file, true)?;
    }
    if !config.ca_files.is_empty() {
        b.ca_bundle(&config.ca_files)?;
    }
    b.timed("features, files and ELF closure", start);
    if !config.no_modules {
        b.modules(config, &features)?;
    } else if !config.boot_modules.is_empty() {
        b.warnings.push(
            "modules= is set but -n leaves out every module: /etc/modules not written".into(),
        );
    }
    b.timed("tree complete", start);
    b.refuse_private_keys()?;
    b.timed("checked for private keys", start);
    Ok(Image::new(
        b.tree,
        config.mtime,
        config.compression,
        b.warnings,
        b.notes,
    ))
}

struct Builder<'a> {
    root: &'a Root,
    tree: Tree,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Builder<'_> {
    /// Records the time since `start` as a debug note (printed with `-v`).
    fn timed(&mut self, what: &str, start: Instant) {
        self.notes.push(format!(
            "time: {what} after {:.1} ms",
            start.elapsed().as_secs_f64() * 1000.0
        ));
    }

    fn base(&mut self) -> Result<(), Error> {
        for (link, target) in BASE_LINKS {
            self.tree.add_symlink(link, target)?;
        }
        for dir in BASE_DIRS {
            let mode = if *dir == "tmp" { 0o1777 } else { 0o755 };
            self.tree.add_dir(dir, mode)?;
        }
        // Device nodes written straight into the archive (no root needed): a static Rust PID 1
        // aborts before main if it cannot open /dev/null for its standard descriptors, and
        // devtmpfs is not mounted yet when /init starts.
        self.tree.insert(
            "dev/console",
            Entry {
                node: Node::CharDev(5, 1),
                mode: 0o600,
            },
        )?;
        self.tree.insert(
            "dev/null",
            Entry {
                node: Node::CharDev(1, 3),
                mode: 0o666,
            },
        )?;
        Ok(())
    }

    fn fixed_files(&mut self, config: &Config) -> Result<(), Error> {
        let init = &config.init;
        let meta = fs::metadata(init).at(init)?;
        if !meta.is_file() {
            return Err(Error::BadInput {
                path: init.clone(),
                reason: "init is not a regular file".into(),
            });
        }
        let content = Content::Host {
            path: init.clone(),
            id: id_of(&meta),
        };
        self.tree.replace(
            "init",
            Entry {
                node: Node::File(content),
                mode: 0o755,
            },
        )?;
        match &config.fstab {
            Some(path) => {
                let meta = fs::metadata(path).at(path)?;
                if !meta.is_file() {
                    return Err(Error::BadInput {
                        path: path.clone(),
                        reason: "fstab is not a regular file".into(),
                    });
                }
                let content = Content::Host {
                    path: path.clone(),
                    id: id_of(&meta),
                };
                self.tree.replace(
                    "etc/fstab",
                    Entry {
                        node: Node::File(content),
                        mode: 0o644,
                    },
                )?;
            }
            None => self.tree.add_bytes("etc/fstab", DEFAULT_FSTAB, 0o644)?,
        }
        self.tree.add_bytes("etc/passwd", PASSWD, 0o644)?;
        self.tree.add_bytes("etc/group", GROUP, 0o644)?;
        Ok(())
    }

    fn keys(&mut self, config: &Config) -> Result<(), Error> {
        let index_keys = self.copy_keys(&config.keys_dirs, APK_KEYS)?;
        self.copy_keys(&config.ovl_keys_dirs, APKOVL_KEYS)?;
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
                let content = Content::Host {
                    path,
                    id: id_of(&meta),
                };
                let (_, added) = self.tree.insert(
                    &format!("{dest}/{name}"),
                    Entry {
                        node: Node::File(content),
                        mode: 0o644,
                    },
                )?;
                if added {
                    count += 1;
                }
            }
        }
        self.tree.add_dir(dest, 0o755)?;
        Ok(count)
    }

    /// `--ca FILE`: the certificates of each file appended to the image's CA bundle
    /// ([`CA_BUNDLE`]: the one the `network` feature copied from the build host, else a new one),
    /// so the init can check an HTTPS boot server signed by a private authority. Each file must
    /// hold at least one PEM certificate and no private key (secrets never enter an image).
    fn ca_bundle(&mut self, files: &[PathBuf]) -> Result<(), Error> {
        let mut path = self.tree.canonical(CA_BUNDLE);
        // The bundle may be a symlink (to ca-bundle.pem, ...): the certificates go into the file
        // it names, so every name of it agrees.
        for _ in 0..8 {
            match self.tree.get(&path) {
                Some(Entry {
                    node: Node::Symlink(target),
                    ..
                }) => {
                    let base = if target.starts_with('/') {
                        ""
                    } else {
                        root::parent(&path)
                    };
                    path = self.tree.canonical(&root::join(base, target));
                }
                _ => break,
            }
        }
        let mut bundle = match self.tree.get(&path).map(|e| &e.node) {
            Some(Node::File(Content::Bytes(b))) => b.clone(),
            Some(Node::File(Content::Host { path: host, .. })) => fs::read(host).at(host)?,
            _ => Vec::new(),
        };
        for file in files {
            let bad = |reason: String| Error::BadInput {
                path: file.clone(),
                reason: format!("--ca: {reason}"),
            };
            let meta = fs::metadata(file).at(file)?;
            if !meta.is_file() {
                return Err(bad("not a regular file".into()));
            }
            if meta.len() > MAX_CA_FILE_BYTES {
                return Err(bad(format!(
                    "{} bytes, more than a CA bundle ({} MiB at most)",
                    meta.len(),
                    MAX_CA_FILE_BYTES >> 20
                )));
            }
            let pem = fs::read(file).at(file)?;
            if pem
                .windows(b"PRIVATE KEY-----".len())
                .any(|w| w == b"PRIVATE KEY-----")
            {
                return Err(bad(
                    "holds a private key; only certificates may enter the image".into(),
                ));
            }
            let certs =
                apk::http::CaBundle::from_pem(&file.display().to_string(), &pem).map_err(|e| {
                    match e {
                        apk::http::CaError::Pem { why, .. } => bad(why),
                        other => bad(other.to_string()),
                    }
                })?;
            self.notes.push(format!(
                "--ca {}: {} certificate(s) added to {path}",
                file.display(),
                certs.len()
            ));
            if !bundle.is_empty() && !bundle.ends_with(b"\n") {
                bundle.push(b'\n');
            }
            bundle.extend_from_slice(&pem);
        }
        self.tree.replace(
            &path,
            Entry {
                node: Node::File(Content::Bytes(bundle)),
                mode: 0o644,
            },
        )?;
        Ok(())
    }

    /// `--ovl-identity`: an age identity (x25519, as `age-keygen` writes it) at
    /// `etc/apkovl/identity`, mode 0600. It decrypts overlays encrypted to its recipient without a
    /// prompt, so whoever can read the medium can read those overlays: it is the one private key
    /// an image carries on purpose. Anything that is not an identity file is refused, so that a
    /// signing key or a recipients file given by mistake does not travel.
    fn identity(&mut self, path: &Path) -> Result<(), Error> {
        let bad = |reason: &str| Error::BadInput {
            path: path.to_path_buf(),
            reason: format!("--ovl-identity: {reason}"),
        };
        let meta = fs::metadata(path).at(path)?;
        if !meta.is_file() {
            return Err(bad("not a regular file"));
        }
        if meta.len() > 64 << 10 {
            return Err(bad("too large for an age identity file"));
        }
        let text = String::from_utf8(fs::read(path).at(path)?)
            .map_err(|_| bad("not an age identity file (not text)"))?;
        let mut identities = 0;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            age::x25519::Identity::from_str(line).map_err(|_| {
                bad("not an age identity file (AGE-SECRET-KEY-1... lines, as age-keygen writes)")
            })?;
            identities += 1;
        }
        if identities == 0 {
            return Err(bad("holds no identity (AGE-SECRET-KEY-1... line)"));
        }
        let content = Content::Host {
            path: path.to_path_buf(),
            id: id_of(&meta),
        };
        self.tree.insert(
            APKOVL_IDENTITY,
            Entry {
                node: Node::File(content),
                mode: 0o600,
            },
        )?;
        self.notes.push(format!(
            "{APKOVL_IDENTITY}: age identity from {} (whoever reads the medium reads overlays encrypted to it)",
            path.display()
        ));
        Ok(())
    }

    /// Refuses the image if any file in it is a private key, except an age identity at
    /// [`APKOVL_IDENTITY`] (`--ovl-identity`).
    fn refuse_private_keys(&self) -> Result<(), Error> {
        for (entry, e) in self.tree.iter() {
            let found = match &e.node {
                Node::File(Content::Bytes(bytes)) => {
                    secret::find(bytes).map(|s| (PathBuf::from(format!("/{entry}")), s))
                }
                Node::File(Content::Host { path, .. }) => secret::find_in_file(path)
                    .at(path)?
                    .map(|s| (path.clone(), s)),
                _ => None,
            };
            match found {
                Some((_, Secret::AgeIdentity)) if entry == APKOVL_IDENTITY => {}
                Some((path, secret)) => {
                    return Err(Error::PrivateKey {
                        path,
                        entry: entry.to_string(),
                        secret,
                    })
                }
                None => {}
            }
        }
        Ok(())
    }

    fn feature_files(&mut self, features: &[Feature]) -> Result<(), Error> {
        let mut elves: Vec<String> = Vec::new();
        for feature in features {
            for line in &feature.files {
                let before = elves.len();
                for path in self.root.glob(line)? {
                    elves.extend(self.tree.add_path(self.root, &path, true)?);
                }
                if elves.len() == before && self.tree.get(line.trim_start_matches('/')).is_none() {
                    self.notes.push(format!(
                        "{}: {line}: not found in the base directory",
                        feature.name
                    ));
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
        let mut queue: Vec<(String, Vec<String>)> =
            files.into_iter().map(|f| (f, Vec::new())).collect();
        while let Some((real, inherited)) = queue.pop() {
            if !done.insert(real.clone()) {
                continue;
            }
            let Some(deps) = resolver.deps_of(&real)? else {
                continue;
            };
            let rpath = if inherited.is_empty() {
                deps.rpath.clone()
            } else {
                inherited.clone()
            };
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
        let in_base = self
            .root
            .resolve("bin/busybox")?
            .filter(|(_, m)| m.is_file());
        if let Some((real, _)) = in_base {
            let files = self.tree.add_path(self.root, "bin/busybox", false)?;
            self.elf_closure(files)?;
            if self.tree.canonical(&real) != "usr/bin/busybox" {
                self.tree
                    .add_symlink("usr/bin/busybox", &format!("/{real}"))?;
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
            let content = Content::Host {
                path: host.to_path_buf(),
                id: id_of(&meta),
            };
            self.tree.insert(
                "usr/bin/busybox",
                Entry {
                    node: Node::File(content),
                    mode: 0o755,
                },
            )?;
            self.notes.push(format!(
                "rescue: using the build host's static {HOST_BUSYBOX}"
            ));
        }
        self.tree.replace(
            "usr/bin/sh",
            Entry {
                node: Node::Symlink("busybox".into()),
                mode: 0o777,
            },
        )?;
        for applet in RESCUE_APPLETS {
            // First wins: a real tool of the same name from a feature is kept.
            self.tree
                .add_symlink(&format!("usr/bin/{applet}"), "busybox")?;
        }
        Ok(())
    }

    fn modules(&mut self, config: &Config, features: &[Feature]) -> Result<(), Error> {
        let start = Instant::now();
        let kver = &config.kernel_version;
        let db = ModuleDb::load(&config.basedir, kver)?;
        self.timed("module metadata loaded", start);
        let mut roots = BTreeSet::new();
        for feature in features {
            let (selected, unmatched) = db.select(&feature.modules);
            roots.extend(selected);
            for line in unmatched {
                self.notes.push(format!(
                    "{}: {line}: no module matches (built in or not built)",
                    feature.name
                ));
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
        self.timed("module metadata and closure", start);
        // lib/modules resolves to usr/lib/modules through the image's merged-/usr link.
        let base = format!("{MODULES_DIR}/{kver}");
        for module in &set {
            let host = db.dir.join(module);
            let meta = fs::metadata(&host).at(&host)?;
            self.tree
                .add_host_file(&root::join(&base, module), host, &meta)?;
        }
        self.tree
            .add_bytes(&format!("{base}/modules.dep"), db.render_dep(&set), 0o644)?;
        self.tree.add_bytes(
            &format!("{base}/modules.alias"),
            db.render_alias(&set),
            0o644,
        )?;
        self.tree.add_bytes(
            &format!("{base}/modules.softdep"),
            db.render_softdep(&set, &extra),
            0o644,
        )?;
        self.tree.add_bytes(
            &format!("{base}/modules.order"),
            db.render_order(&set),
            0o644,
        )?;
        if let Some(text) = db.builtin_text() {
            self.tree
                .add_bytes(&format!("{base}/modules.builtin"), text, 0o644)?;
        }
        if let Some(bytes) = db.builtin_modinfo() {
            self.tree
                .add_bytes(&format!("{base}/modules.builtin.modinfo"), bytes, 0o644)?;
        }
        if !config.boot_modules.is_empty() {
            self.tree.add_bytes(
                MODULES_LIST,
                kmod::modules_list::render(&config.boot_modules),
                0o644,
            )?;
        }
        self.firmware(&db, &set)?;
        self.timed("firmware", start);
        Ok(())
    }

    /// vfat and msdos mounts load the NLS tables of the kernel's FAT defaults: express that as
    /// softdeps so the modules are in the image and the init loads them with the filesystem.
    fn fat_softdeps(
        &mut self,
        config: &Config,
        db: &ModuleDb,
        roots: &BTreeSet<String>,
    ) -> Result<Vec<SoftDep>, Error> {
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
        Ok(fat_users
            .into_iter()
            .map(|module| SoftDep {
                module,
                pre: pre.clone(),
                post: Vec::new(),
            })
            .collect())
    }

    /// Firmware of the included modules (see `firmware`); missing names become debug notes.
    fn firmware(&mut self, db: &ModuleDb, set: &BTreeSet<String>) -> Result<(), Error> {
        let modules: Vec<PathBuf> = set.iter().map(|m| db.dir.join(m)).collect();
        for name in firmware::names(&modules)? {
            match firmware::locate(self.root, &name)? {
                Some(path) => {
                    self.tree.add_path(self.root, &path, false)?;
                }
                None => self.notes.push(format!(
                    "firmware {name}: not found under {FIRMWARE_DIR}, skipped"
                )),
            }
        }
        Ok(())
    }
}

fn id_of(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(test)]
mod build_tests {
    use super::*;
    use crate::config::Compression;
    use crate::modinfo::tests::fake_module;
    use std::os::unix::fs::symlink;

    const KVER: &str = "1.0-test";

    /// A base directory with two fake modules (one zstd-compressed), firmware with a symlink,
    /// and a features directory with one feature.
    fn fake_base(tmp: &Path) -> Config {
        let base = tmp.join("base");
        let kdir = base.join("lib/modules").join(KVER);
        fs::create_dir_all(kdir.join("kernel/drivers/net")).unwrap();
        fs::create_dir_all(kdir.join("kernel/lib")).unwrap();
        fs::write(
            kdir.join("kernel/drivers/net/foo.ko"),
            fake_module(b"firmware=foo/fw.bin\0firmware=missing.bin\0firmware=../../etc/shadow\0"),
        )
        .unwrap();
        let bar = zstd::encode_all(&fake_module(b"license=GPL\0")[..], 3).unwrap();
        fs::write(kdir.join("kernel/lib/bar.ko.zst"), bar).unwrap();
        fs::write(
            kdir.join("modules.dep"),
            "kernel/drivers/net/foo.ko: kernel/lib/bar.ko.zst\nkernel/lib/bar.ko.zst:\n",
        )
        .unwrap();
        fs::write(
            kdir.join("modules.alias"),
            "alias pci:v00001234d* foo\nalias other baz\n",
        )
        .unwrap();
        fs::create_dir_all(base.join("lib/firmware/foo")).unwrap();
        fs::write(base.join("lib/firmware/foo/fw-1.2.bin.zst"), b"fw").unwrap();
        symlink("fw-1.2.bin.zst", base.join("lib/firmware/foo/fw.bin.zst")).unwrap();
        fs::create_dir_all(base.join("etc")).unwrap();
        fs::write(base.join("etc/shadow"), b"secret").unwrap();
        let feats = tmp.join("features.d");
        fs::create_dir_all(&feats).unwrap();
        fs::write(feats.join("net.modules"), "# NICs\nkernel/drivers/net\n").unwrap();
        let init = tmp.join("init");
        fs::write(&init, b"#!/bin/sh\n").unwrap();
        Config {
            basedir: base,
            kernel_version: KVER.into(),
            features: vec!["net".into()],
            feature_dirs: vec![feats],
            init,
            fstab: None,
            compression: Compression::Zstd(3),
            no_modules: false,
            keys_dirs: vec![],
            ovl_keys_dirs: vec![],
            custom_files: vec![],
            boot_modules: vec!["foo".into()],
            mtime: 0,
            policy: bootspec::BootPolicy::default(),
            ovl_identity: None,
            ca_files: vec![],
        }
    }

    fn file_text(image: &Image, path: &str) -> String {
        match &image
            .tree()
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing"))
            .node
        {
            Node::File(Content::Bytes(b)) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("{path}: {other:?}"),
        }
    }

    /// A self-signed CA certificate and its key, as PEM.
    fn test_ca(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// `--ca FILE`: appended to the bundle the network feature copied (through its symlink),
    /// one new bundle when there was none; a private key, a file without a certificate and
    /// garbage are refused naming the file.
    #[test]
    fn ca_files_join_the_bundle_and_keys_stay_out() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = fake_base(tmp.path());
        let (host_ca, _) = test_ca("host CA");
        let certs = config.basedir.join("etc/ssl/certs");
        fs::create_dir_all(&certs).unwrap();
        fs::write(config.basedir.join("etc/ssl/ca-bundle.pem"), &host_ca).unwrap();
        symlink("../ca-bundle.pem", certs.join("ca-certificates.crt")).unwrap();
        config.custom_files = vec!["/etc/ssl/certs/ca-certificates.crt".into()];
        let (private_ca, private_key) = test_ca("private CA");
        let ca = tmp.path().join("private-ca.pem");
        fs::write(&ca, &private_ca).unwrap();
        config.ca_files = vec![ca.clone()];
        let image = build(&config).unwrap();
        assert_eq!(
            image.tree().get(CA_BUNDLE).unwrap().node,
            Node::Symlink("../ca-bundle.pem".into())
        );
        let bundle = file_text(&image, "etc/ssl/ca-bundle.pem");
        assert_eq!(bundle, format!("{host_ca}{private_ca}"));
        assert_eq!(
            apk::http::CaBundle::from_pem("b", bundle.as_bytes())
                .unwrap()
                .len(),
            2
        );

        config.custom_files.clear();
        let image = build(&config).unwrap();
        assert_eq!(file_text(&image, CA_BUNDLE), private_ca);

        let refused = |content: String, why: &str| {
            let f = tmp.path().join("bad.pem");
            fs::write(&f, content).unwrap();
            let mut c = config.clone();
            c.ca_files = vec![ca.clone(), f.clone()];
            let e = build(&c).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{}: --ca: ", f.display())) && e.contains(why),
                "{e}"
            );
        };
        refused(
            format!("{private_ca}{private_key}"),
            "holds a private key; only certificates may enter the image",
        );
        refused(private_key.clone(), "private key");
        refused("hello\n".into(), "no PEM certificate in it");
    }

    #[test]
    fn modules_firmware_and_boot_modules() {
        let tmp = tempfile::tempdir().unwrap();
        let config = fake_base(tmp.path());
        let image = build(&config).unwrap();
        let list = image.list();
        let has = |p: &str| list.iter().any(|l| l == p);
        let m = format!("./usr/lib/modules/{KVER}");
        assert!(has(&format!("{m}/kernel/drivers/net/foo.ko")));
        assert!(has(&format!("{m}/kernel/lib/bar.ko.zst")));
        // Firmware: the link is kept as a link, its target is included; lib/ maps to usr/lib/.
        assert_eq!(
            image
                .tree()
                .get("usr/lib/firmware/foo/fw.bin.zst")
                .unwrap()
                .node,
            Node::Symlink("fw-1.2.bin.zst".into())
        );
        assert!(matches!(
            image
                .tree()
                .get("usr/lib/firmware/foo/fw-1.2.bin.zst")
                .unwrap()
                .node,
            Node::File(_)
        ));
        assert!(
            !list.iter().any(|l| l.contains("shadow")),
            "firmware=../../etc/shadow escaped"
        );
        assert!(image
            .notes()
            .iter()
            .any(|n| n.contains("firmware missing.bin")));
        assert_eq!(file_text(&image, "etc/modules"), "foo\n");
        let dep = file_text(&image, &format!("usr/lib/modules/{KVER}/modules.dep"));
        assert_eq!(
            dep,
            "kernel/drivers/net/foo.ko: kernel/lib/bar.ko.zst\nkernel/lib/bar.ko.zst:\n"
        );
        let alias = file_text(&image, &format!("usr/lib/modules/{KVER}/modules.alias"));
        assert!(
            alias.contains("alias pci:v00001234d* foo\n") && !alias.contains("baz"),
            "{alias}"
        );
        assert!(image
            .warnings()
            .iter()
            .any(|w| w.contains("no package index keys")));
        for fixed in [
            "./init",
            "./dev/console",
            "./dev/null",
            "./etc/passwd",
            "./etc/group",
            "./etc/fstab",
            "./etc/apk/keys",
            "./etc/apkovl/keys",
            "./usr/lib/modules",
            "./tmp",
        ] {
            assert!(has(fixed), "{fixed} missing");
        }
        assert_eq!(image.tree().get("tmp").unwrap().mode, 0o1777);
    }

    #[test]
    fn library_builds_are_byte_identical() {
        let tmp = tempfile::tempdir().unwrap();
        let config = fake_base(tmp.path());
        let a = build(&config)
            .unwrap()
            .write(Vec::new(), Path::new("a"))
            .unwrap();
        let b = build(&config)
            .unwrap()
            .write(Vec::new(), Path::new("b"))
            .unwrap();
        assert_eq!(a, b);
        let entries = crate::cpio::parse(&zstd::decode_all(&a[..]).unwrap()).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn unknown_boot_module_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = fake_base(tmp.path());
        config.boot_modules = vec!["nosuchmod".into()];
        let err = build(&config).unwrap_err().to_string();
        assert!(
            err.starts_with("nosuchmod: boot module not found in "),
            "{err}"
        );
    }

    #[test]
    fn vfat_gets_the_nls_softdeps_of_the_kernel_config() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = fake_base(tmp.path());
        let kdir = config.basedir.join("lib/modules").join(KVER);
        fs::create_dir_all(kdir.join("kernel/fs/fat")).unwrap();
        fs::create_dir_all(kdir.join("kernel/fs/nls")).unwrap();
        for m in [
            "fs/fat/fat.ko",
            "fs/fat/vfat.ko",
            "fs/nls/nls_cp850.ko",
            "fs/nls/nls_utf8.ko",
            "fs/nls/nls_cp437.ko",
        ] {
            fs::write(kdir.join("kernel").join(m), fake_module(b"license=GPL\0")).unwrap();
        }
        fs::write(
            kdir.join("modules.dep"),
            "kernel/fs/fat/fat.ko:\nkernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\nkernel/fs/nls/nls_cp850.ko:\n\
             kernel/fs/nls/nls_utf8.ko:\nkernel/fs/nls/nls_cp437.ko:\n",
        )
        .unwrap();
        fs::write(
            kdir.join("config"),
            "CONFIG_FAT_DEFAULT_CODEPAGE=850\nCONFIG_FAT_DEFAULT_IOCHARSET=\"utf8\"\n",
        )
        .unwrap();
        fs::write(
            config.feature_dirs[0].join("vfat.modules"),
            "kernel/fs/fat\n",
        )
        .unwrap();
        config.features = vec!["vfat".into()];
        config.boot_modules.clear();
        let image = build(&config).unwrap();
        let list = image.list();
        let m = format!("./usr/lib/modules/{KVER}/kernel/fs");
        for want in [
            "fat/vfat.ko",
            "fat/fat.ko",
            "nls/nls_cp850.ko",
            "nls/nls_utf8.ko",
        ] {
            assert!(list.contains(&format!("{m}/{want}")), "{want} missing");
        }
        assert!(!list.contains(&format!("{m}/nls/nls_cp437.ko")));
        let soft = file_text(&image, &format!("usr/lib/modules/{KVER}/modules.softdep"));
        assert!(
            soft.contains("softdep vfat pre: nls_cp850 nls_utf8\n"),
            "{soft}"
        );
    }

    /// An age identity as age-keygen writes it.
    fn age_identity() -> String {
        let id = age::x25519::Identity::generate();
        format!(
            "# created: 2024-01-01T00:00:00Z\n# public key: {}\n{}\n",
            id.to_public(),
            age::secrecy::ExposeSecret::expose_secret(&id.to_string())
        )
    }

    /// Regression (issue 13 item 1): `apk keygen -o DIR/overlay.key` writes both halves into DIR,
    /// and --keys-dir/--ovl-keys-dir copied every file of DIR, the private half included.
    #[test]
    fn a_private_key_in_a_keys_dir_is_refused() {
        for ovl in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let mut config = fake_base(tmp.path());
            let dir = tmp.path().join("keys");
            fs::create_dir(&dir).unwrap();
            let key = apk::trust::PrivateKey::generate_ed25519();
            fs::write(dir.join("overlay.key"), key.to_pem().unwrap()).unwrap();
            fs::write(dir.join("overlay.key.pub"), key.public().to_pem()).unwrap();
            let dest = if ovl {
                config.ovl_keys_dirs = vec![dir.clone()];
                "etc/apkovl/keys"
            } else {
                config.keys_dirs = vec![dir.clone()];
                "etc/apk/keys"
            };
            let err = build(&config).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "{}: a PEM private key (PRIVATE KEY): only public keys may enter an image \
                     (it would be /{dest}/overlay.key)",
                    dir.join("overlay.key").display()
                )
            );
            fs::remove_file(dir.join("overlay.key")).unwrap();
            let image = build(&config).unwrap();
            assert!(image
                .tree()
                .get(&format!("{dest}/overlay.key.pub"))
                .is_some());
        }
    }

    #[test]
    fn private_keys_are_refused_wherever_they_come_from() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = fake_base(tmp.path());
        let etc = config.basedir.join("etc");
        fs::write(
            etc.join("rsa.pem"),
            "-----BEGIN RSA PRIVATE KEY-----\nMII\n",
        )
        .unwrap();
        fs::write(etc.join("identity"), age_identity()).unwrap();
        config.custom_files = vec!["/etc/rsa.pem".into()];
        let err = build(&config).unwrap_err().to_string();
        assert!(
            err.contains("rsa.pem: a PEM private key (RSA PRIVATE KEY)"),
            "{err}"
        );
        // An age identity is allowed at etc/apkovl/identity only.
        config.custom_files = vec!["/etc/identity".into()];
        let err = build(&config).unwrap_err().to_string();
        assert!(
            err.contains("identity: an age identity (a private key): only public keys may enter an image (it would be /etc/identity)"),
            "{err}"
        );
    }

    #[test]
    fn boot_policy_and_overlay_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = fake_base(tmp.path());
        let image = build(&config).unwrap();
        assert_eq!(
            bootspec::BootPolicy::parse(&file_text(&image, "etc/boot-policy")).unwrap(),
            bootspec::BootPolicy::default()
        );
        assert!(image.tree().get("etc/apkovl/identity").is_none());

        let id = tmp.path().join("overlay.age-identity");
        fs::write(&id, age_identity()).unwrap();
        config.ovl_identity = Some(id.clone());
        config.policy.apkovl_require = bootspec::OverlayRequirement::ENCRYPTED;
        config.policy.apkovl_legacy_sig = true;
        let image = build(&config).unwrap();
        let policy = bootspec::BootPolicy::parse(&file_text(&image, "etc/boot-policy")).unwrap();
        assert_eq!(policy, config.policy);
        let entry = image.tree().get("etc/apkovl/identity").unwrap();
        assert_eq!(entry.mode, 0o600);
        assert!(matches!(&entry.node, Node::File(Content::Host { path, .. }) if *path == id));

        for (text, why) in [
            (
                apk::trust::PrivateKey::generate_ed25519().to_pem().unwrap(),
                "not an age identity file",
            ),
            (
                "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n".into(),
                "not an age identity file",
            ),
            ("# only a comment\n".into(), "holds no identity"),
        ] {
            fs::write(&id, text).unwrap();
            let err = build(&config).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{}: --ovl-identity: {why}", id.display())),
                "{err}"
            );
        }
    }

    #[test]
    fn no_modules_skips_the_kernel_entirely() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = fake_base(tmp.path());
        config.no_modules = true;
        config.boot_modules.clear();
        config.kernel_version = "not-installed".into();
        let image = build(&config).unwrap();
        assert!(!image
            .list()
            .iter()
            .any(|l| l.contains(".ko") || l.contains("firmware")));
    }
}
