//! User and group names resolved through the *target* root's `etc/passwd` and `etc/group`, parsed
//! directly (a static binary has no usable NSS, and the host's users are irrelevant). `root` is
//! always 0 (apk-format.md §1.4).

use crate::root::Root;
use std::collections::HashMap;

/// Name tables of one root; reload after scripts or when `etc/passwd`/`etc/group` change.
#[derive(Debug, Default)]
pub struct Owners {
    users: Option<HashMap<String, u32>>,
    groups: Option<HashMap<String, u32>>,
}

fn parse(text: &str) -> HashMap<String, u32> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

impl Owners {
    /// Drop the cached tables.
    pub fn invalidate(&mut self) {
        self.users = None;
        self.groups = None;
    }

    fn table<'a>(
        slot: &'a mut Option<HashMap<String, u32>>,
        root: &Root,
        rel: &str,
    ) -> &'a HashMap<String, u32> {
        slot.get_or_insert_with(|| {
            root.read_opt(rel)
                .ok()
                .flatten()
                .map(|b| parse(&String::from_utf8_lossy(&b)))
                .unwrap_or_default()
        })
    }

    /// uid for `name`, else `fallback`.
    pub fn uid(&mut self, root: &Root, name: &str, fallback: u32) -> u32 {
        if name == "root" {
            return 0;
        }
        if name.is_empty() {
            return fallback;
        }
        Self::table(&mut self.users, root, "etc/passwd")
            .get(name)
            .copied()
            .unwrap_or(fallback)
    }

    /// gid for `name`, else `fallback`.
    pub fn gid(&mut self, root: &Root, name: &str, fallback: u32) -> u32 {
        if name == "root" {
            return 0;
        }
        if name.is_empty() {
            return fallback;
        }
        Self::table(&mut self.groups, root, "etc/group")
            .get(name)
            .copied()
            .unwrap_or(fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_in_target_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nchrony:x:100:101::/var/lib/chrony:/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "root:x:0:\nshadow:x:42:\n").unwrap();
        let r = Root::open(t.path()).unwrap();
        let mut o = Owners::default();
        assert_eq!(o.uid(&r, "chrony", 7), 100);
        assert_eq!(o.uid(&r, "nobody-here", 7), 7);
        assert_eq!(o.gid(&r, "shadow", 0), 42);
        assert_eq!(o.uid(&r, "root", 5), 0);
        std::fs::write(t.path().join("etc/passwd"), "chrony:x:200:201::/:/bin/sh\n").unwrap();
        assert_eq!(o.uid(&r, "chrony", 7), 100);
        o.invalidate();
        assert_eq!(o.uid(&r, "chrony", 7), 200);
    }
}
