//! `modules.dep`: one line per loadable module, `path: dependency paths`, paths relative to
//! `/lib/modules/<kver>` (depmod writes absolute paths when modules live outside that tree; the
//! part after `/<kver>/` is kept). The dependencies of a line are its whole closure over the
//! `depmod` graph; the loader still orders them (dependencies first).
//!
//! Parsing is strict: a line that is not `path:` followed by module paths, a path listed twice,
//! or a dependency without a line of its own is an error. A truncated or edited file would
//! otherwise give an image whose modules fail to load at boot, or a boot that loads half a
//! dependency chain.

use std::collections::HashMap;

use crate::error::ParseError;
use crate::name::module_name;

/// One line of `modules.dep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Path of the module file, relative to the modules directory.
    pub path: String,
    /// The module's name (normalised).
    pub name: String,
    /// Paths of the modules it depends on, as listed (depmod lists them closest first).
    pub deps: Vec<String>,
}

/// A parsed `modules.dep`, in file order, looked up by path or by name.
#[derive(Debug, Clone, Default)]
pub struct ModulesDep {
    entries: Vec<Dep>,
    by_path: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

impl ModulesDep {
    /// Parses the text of `modules.dep` for kernel `kver` (used to make absolute paths
    /// relative). When two lines name the same module, the first wins, as depmod's search order
    /// puts the preferred one first.
    pub fn parse(text: &str, kver: &str) -> Result<Self, ParseError> {
        let mut dep = ModulesDep::default();
        let mut line_of = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let Some((path, deps)) = entry.split_once(':') else {
                return Err(ParseError::new(
                    line,
                    "expected \"module.ko: dependencies\"",
                ));
            };
            let path = relative(path.trim(), kver);
            let name = module_name(&path).ok_or_else(|| {
                ParseError::new(line, format!("{path}: not a kernel module file name"))
            })?;
            let mut list = Vec::new();
            for d in deps.split_whitespace() {
                let d = relative(d, kver);
                if module_name(&d).is_none() {
                    return Err(ParseError::new(
                        line,
                        format!("{d}: not a kernel module file name"),
                    ));
                }
                list.push(d);
            }
            if dep.by_path.contains_key(&path) {
                return Err(ParseError::new(line, format!("{path}: listed twice")));
            }
            dep.by_path.insert(path.clone(), dep.entries.len());
            dep.by_name.entry(name.clone()).or_insert(dep.entries.len());
            dep.entries.push(Dep {
                path,
                name,
                deps: list,
            });
            line_of.push(line);
        }
        for (entry, line) in dep.entries.iter().zip(line_of) {
            if let Some(missing) = entry.deps.iter().find(|d| !dep.by_path.contains_key(*d)) {
                return Err(ParseError::new(
                    line,
                    format!(
                        "{}: dependency {missing} has no line of its own",
                        entry.path
                    ),
                ));
            }
        }
        Ok(dep)
    }

    /// Every module in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Dep> {
        self.entries.iter()
    }

    /// The number of modules.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no module at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The module at `path` (relative to the modules directory).
    pub fn by_path(&self, path: &str) -> Option<&Dep> {
        self.by_path.get(path).map(|&i| &self.entries[i])
    }

    /// The module called `name` (`-` and `_` alike).
    pub fn by_name(&self, name: &str) -> Option<&Dep> {
        self.by_name
            .get(&crate::normalize(name))
            .map(|&i| &self.entries[i])
    }

    /// `modules.dep` text of the modules `keep` accepts, in the original order.
    pub fn render(&self, keep: impl Fn(&Dep) -> bool) -> String {
        let mut out = String::new();
        for entry in self.entries.iter().filter(|e| keep(e)) {
            out.push_str(&entry.path);
            out.push(':');
            for d in &entry.deps {
                out.push(' ');
                out.push_str(d);
            }
            out.push('\n');
        }
        out
    }
}

/// depmod writes absolute paths when the modules live outside the standard tree; keep the part
/// after `/<kver>/` so every path is relative to the modules directory.
pub(crate) fn relative(path: &str, kver: &str) -> String {
    if path.starts_with('/') && !kver.is_empty() {
        let marker = format!("/{kver}/");
        if let Some(i) = path.find(&marker) {
            return path[i + marker.len()..].to_string();
        }
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_names_and_dependencies() {
        let dep = ModulesDep::parse(
            "kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n# c\n\nkernel/fs/fat/fat.ko:\n\
             kernel/drivers/usb/storage/usb-storage.ko.zst:\n",
            "6.1",
        )
        .unwrap();
        assert_eq!(dep.len(), 3);
        let vfat = dep.by_name("vfat").unwrap();
        assert_eq!(vfat.deps, ["kernel/fs/fat/fat.ko"]);
        assert_eq!(
            dep.by_name("usb-storage").unwrap().path,
            "kernel/drivers/usb/storage/usb-storage.ko.zst"
        );
        assert_eq!(dep.by_path("kernel/fs/fat/fat.ko").unwrap().name, "fat");
        assert_eq!(
            dep.render(|d| d.name != "usb_storage"),
            "kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\nkernel/fs/fat/fat.ko:\n"
        );
    }

    #[test]
    fn absolute_paths_become_relative() {
        let dep = ModulesDep::parse(
            "/lib/modules/1.2/kernel/a.ko: /lib/modules/1.2/kernel/b.ko\n/lib/modules/1.2/kernel/b.ko:\n",
            "1.2",
        )
        .unwrap();
        let paths: Vec<&str> = dep.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["kernel/a.ko", "kernel/b.ko"]);
        assert_eq!(dep.by_name("a").unwrap().deps, ["kernel/b.ko"]);
    }

    #[test]
    fn corrupt_lines_are_errors_naming_the_line() {
        for (text, want) in [
            (
                "kernel/a.ko kernel/b.ko\n",
                "line 1: expected \"module.ko: dependencies\"",
            ),
            (
                "kernel/c.ko:\nkernel/a.ko: kernel/b.ko\n",
                "line 2: kernel/a.ko: dependency kernel/b.ko has no line of its own",
            ),
            (
                "kernel/a.txt:\n",
                "line 1: kernel/a.txt: not a kernel module file name",
            ),
            (
                "kernel/a.ko:\nkernel/a.ko:\n",
                "line 2: kernel/a.ko: listed twice",
            ),
            (
                "kernel/a.ko: garbage\n",
                "line 1: garbage: not a kernel module file name",
            ),
        ] {
            let err = ModulesDep::parse(text, "1").unwrap_err().to_string();
            assert_eq!(err, want, "{text:?}");
        }
    }

    #[test]
    fn the_first_of_two_modules_with_one_name_wins() {
        let dep = ModulesDep::parse("updates/vfat.ko:\nkernel/fs/fat/vfat.ko:\n", "1").unwrap();
        assert_eq!(dep.by_name("vfat").unwrap().path, "updates/vfat.ko");
    }
}
