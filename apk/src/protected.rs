//! Protected paths: the rules that decide which files are configuration (`.apk-new` on upgrade,
//! selected by `apk audit --backup` and therefore by `lbu`). Built-in rules `+etc`, `@etc/init.d`,
//! `!etc/apk`, then every `etc/apk/protected_paths.d/*.list`; later rules win; patterns are split
//! per directory level and matched with `fnmatch` (apk-format.md §6.1; lbu/README.md, "Selection").

use crate::fnmatch::fnmatch;
use std::path::Path;

/// Protection mode of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protect {
    /// No rule applies.
    None,
    /// `-path`: explicitly not protected.
    Ignore,
    /// `+path` (or no prefix): changed files are protected.
    Changed,
    /// `@path`: only symlinks are protected.
    SymlinksOnly,
    /// `!path`: everything is protected (always backed up).
    All,
}

impl Protect {
    /// Whether the mode protects anything.
    pub fn is_protected(self) -> bool {
        !matches!(self, Protect::None | Protect::Ignore)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    comps: Vec<String>,
    mode: Protect,
}

/// An ordered rule set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedPaths {
    rules: Vec<Rule>,
}

/// The rules in effect inside one directory.
#[derive(Clone, Debug)]
pub struct Node {
    /// The directory's own mode (inherited unless a rule names it).
    pub mode: Protect,
    rules: Vec<Rule>,
}

impl Default for ProtectedPaths {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ProtectedPaths {
    /// An empty rule set.
    pub fn empty() -> Self {
        ProtectedPaths { rules: Vec::new() }
    }

    /// apk's built-in rules.
    pub fn builtin() -> Self {
        let mut p = Self::empty();
        for l in ["+etc", "@etc/init.d", "!etc/apk"] {
            p.add_line(l);
        }
        p
    }

    /// Built-in rules plus `ROOT/etc/apk/protected_paths.d/*.list` (in name order).
    pub fn load(root: &Path) -> Self {
        let mut p = Self::builtin();
        // Resolved beneath the root: a symlinked protected_paths.d never reads the host's rules.
        let Ok(root) = crate::root::Root::open(root) else {
            return p;
        };
        let dir = "etc/apk/protected_paths.d";
        for name in root.list(dir).unwrap_or_default() {
            if !name.ends_with(".list") {
                continue;
            }
            if let Ok(Some(text)) = root.read_opt(&format!("{dir}/{name}")) {
                p.add_text(&String::from_utf8_lossy(&text));
            }
        }
        p
    }

    /// Add every line of a `.list` file.
    pub fn add_text(&mut self, text: &str) {
        for l in text.lines() {
            self.add_line(l);
        }
    }

    /// Add one rule line (`+path`, `-path`, `@path`, `!path`, `path`; `#` comments ignored).
    pub fn add_line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        let (mode, pat) = match line.as_bytes()[0] {
            b'+' => (Protect::Changed, &line[1..]),
            b'-' => (Protect::Ignore, &line[1..]),
            b'@' => (Protect::SymlinksOnly, &line[1..]),
            b'!' => (Protect::All, &line[1..]),
            _ => (Protect::Changed, line),
        };
        let comps: Vec<String> = pat
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect();
        if !comps.is_empty() {
            self.rules.push(Rule { comps, mode });
        }
    }

    /// The node for the root directory.
    pub fn root(&self) -> Node {
        Node {
            mode: Protect::None,
            rules: self.rules.clone(),
        }
    }

    /// Mode of a path (`is_dir` selects directory or file semantics for the last component).
    pub fn mode_of(&self, path: &str, is_dir: bool) -> Protect {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let Some((last, dirs)) = comps.split_last() else {
            return Protect::None;
        };
        let mut node = self.root();
        for d in dirs {
            node = node.child(d);
        }
        if is_dir {
            node.child(last).mode
        } else {
            node.file_mode(last)
        }
    }
}

impl Node {
    /// The node of subdirectory `name`.
    pub fn child(&self, name: &str) -> Node {
        let mut mode = self.mode;
        let mut rules = Vec::new();
        for r in &self.rules {
            if fnmatch(&r.comps[0], name) {
                if r.comps.len() == 1 {
                    mode = r.mode;
                } else {
                    rules.push(Rule {
                        comps: r.comps[1..].to_vec(),
                        mode: r.mode,
                    });
                }
            }
        }
        Node { mode, rules }
    }

    /// Mode of file `name` in this directory: the directory's, overridden by the last matching rule.
    pub fn file_mode(&self, name: &str) -> Protect {
        let mut mode = self.mode;
        for r in &self.rules {
            if r.comps.len() == 1 && fnmatch(&r.comps[0], name) {
                mode = r.mode;
            }
        }
        mode
    }

    /// Whether anything at or below this directory can be protected (else audit skips it).
    pub fn has_protected(&self) -> bool {
        self.mode.is_protected() || self.rules.iter().any(|r| r.mode.is_protected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules() {
        let p = ProtectedPaths::builtin();
        assert_eq!(p.mode_of("etc/motd", false), Protect::Changed);
        assert_eq!(p.mode_of("etc/init.d/sshd", false), Protect::SymlinksOnly);
        assert_eq!(p.mode_of("etc/apk/world", false), Protect::All);
        assert_eq!(p.mode_of("etc/apk/keys/x.pub", false), Protect::All);
        assert_eq!(p.mode_of("usr/bin/ls", false), Protect::None);
        assert_eq!(p.mode_of("etc", true), Protect::Changed);
        assert!(!p.root().child("usr").has_protected());
        assert!(p.root().has_protected());
    }

    #[test]
    fn later_rules_win() {
        let mut p = ProtectedPaths::builtin();
        p.add_text("-etc/apk/world\n-etc/shadow\n+root/x\n+root/*.key\n-etc/ssl\n+etc/ssl/private\n# comment\n\n+/foo.txt/\n");
        assert_eq!(p.mode_of("etc/apk/world", false), Protect::Ignore);
        assert_eq!(p.mode_of("etc/apk/arch", false), Protect::All);
        assert_eq!(p.mode_of("etc/shadow", false), Protect::Ignore);
        assert_eq!(p.mode_of("root/x", false), Protect::Changed);
        assert_eq!(p.mode_of("root/a.key", false), Protect::Changed);
        assert_eq!(p.mode_of("root/a.txt", false), Protect::None);
        assert_eq!(p.mode_of("etc/ssl/cert.pem", false), Protect::Ignore);
        assert_eq!(p.mode_of("etc/ssl/private/k", false), Protect::Changed);
        assert_eq!(p.mode_of("foo.txt", false), Protect::Changed);
        let ssl = p.root().child("etc").child("ssl");
        assert_eq!(ssl.mode, Protect::Ignore);
        assert!(ssl.has_protected());
        assert!(p.root().child("root").has_protected());
        assert_eq!(p.mode_of("root/x", true), Protect::Changed);
    }

    #[test]
    fn loads_list_files() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("etc/apk/protected_paths.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("lbu.list"), "+root/.ssh\n").unwrap();
        std::fs::write(d.join("other.txt"), "+usr\n").unwrap();
        let p = ProtectedPaths::load(t.path());
        assert_eq!(
            p.mode_of("root/.ssh/authorized_keys", false),
            Protect::Changed
        );
        assert_eq!(p.mode_of("usr/x", false), Protect::None);
    }
}
