//! Test overlays as data: files, directories, symlinks, a world, and an OpenRC service that runs a
//! scenario script on the serial console once the system is up.

use apk::tar::{Entry, Kind, Magic, Writer};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Node {
    File { data: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Symlink { target: String },
}

/// An apkovl under construction (paths relative to `/`).
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    nodes: BTreeMap<String, Node>,
}

/// The OpenRC service that runs `/etc/qemutest.sh` after everything else in the default
/// runlevel, with its output on the console.
/// The OpenRC service of [`Overlay::scenario`]: runs `/etc/qemutest.sh` on the console, last in
/// the default runlevel.
pub const SERVICE: &str = "#!/sbin/openrc-run\n\
description=\"end-to-end test scenario\"\n\
depend() {\n\tafter *\n}\n\
start() {\n\t/etc/qemutest.sh </dev/null >/dev/console 2>&1\n\treturn 0\n}\n";

impl Overlay {
    /// An empty overlay.
    pub fn new() -> Self {
        Self::default()
    }

    fn parents(&mut self, path: &str) {
        let mut cur = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(c);
            self.nodes
                .entry(cur.clone())
                .or_insert(Node::Dir { mode: 0o755 });
        }
    }

    /// A file with mode 0644.
    pub fn file(self, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.file_mode(path, data, 0o644)
    }

    /// A file with a mode.
    pub fn file_mode(mut self, path: &str, data: impl AsRef<[u8]>, mode: u32) -> Self {
        self.parents(path);
        self.nodes.insert(
            path.to_string(),
            Node::File {
                data: data.as_ref().to_vec(),
                mode,
            },
        );
        self
    }

    /// A directory.
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        self.parents(path);
        self.nodes.insert(path.to_string(), Node::Dir { mode });
        self
    }

    /// A symbolic link.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.parents(path);
        self.nodes.insert(
            path.to_string(),
            Node::Symlink {
                target: target.to_string(),
            },
        );
        self
    }

    /// The deletion manifest (`etc/lbu/deleted`): files the boot deletes after the package
    /// install (package-owned configuration the user removed).
    pub fn deleted(self, paths: &[&str]) -> Self {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        self.file(overlays::MANIFEST, overlays::deleted::format(&paths))
    }

    /// `etc/apk/world` with these packages (one per line, sorted as apk writes it).
    pub fn world(self, pkgs: &[&str]) -> Self {
        let mut v: Vec<&str> = pkgs.to_vec();
        v.sort();
        let text: String = v.iter().map(|p| format!("{p}\n")).collect();
        self.file("etc/apk/world", text)
    }

    /// Run `script` (a `/bin/sh` script) as the last service of the default runlevel, and ask
    /// the init for Alpine's default runlevels (`etc/.default_boot_services`).
    pub fn scenario(self, script: &str) -> Self {
        self.file("etc/.default_boot_services", "")
            .file_mode("etc/init.d/qemutest", SERVICE, 0o755)
            .symlink("etc/runlevels/default/qemutest", "/etc/init.d/qemutest")
            .file_mode("etc/qemutest.sh", format!("#!/bin/sh\n{script}\n"), 0o755)
    }

    /// The overlay as `HOST.apkovl.tar.gz` bytes: old-GNU tar as busybox writes it, root-owned,
    /// directories with a trailing `/`, parents first.
    pub fn tar_gz(&self) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), Magic::Gnu);
        w.pax_extras = false;
        for (path, node) in &self.nodes {
            let e = match node {
                Node::File { mode, .. } => Entry::new(path, Kind::File, *mode),
                Node::Dir { mode } => Entry::new(&format!("{path}/"), Kind::Dir, *mode),
                Node::Symlink { target } => {
                    let mut e = Entry::new(path, Kind::Symlink, 0o777);
                    e.link = target.clone();
                    e
                }
            };
            let mut e = e;
            e.mtime = 1_700_000_000;
            let data: &[u8] = match node {
                Node::File { data, .. } => data,
                _ => b"",
            };
            w.append(&e, data).expect("writing to memory");
        }
        apk::gzip::compress(&w.finish().expect("writing to memory"))
    }
}
