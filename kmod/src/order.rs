//! `modules.order`: the modules in the order the kernel's build linked them, one path per line,
//! always with a plain `.ko` suffix even when the files are compressed. kmod uses it to break
//! ties between aliases; mkinitfs regenerates it for the subset it embeds.

use std::collections::BTreeSet;

use crate::dep::relative;
use crate::name::SUFFIXES;

/// The paths of `modules.order` text for kernel `kver` (absolute paths made relative).
pub fn parse(text: &str, kver: &str) -> Vec<String> {
    text.lines()
        .map(|l| relative(l.trim(), kver))
        .filter(|l| !l.is_empty())
        .collect()
}

/// `modules.order` text for the module paths in `set` (as `modules.dep` names them, maybe
/// compressed): the lines of `order` whose module is in the set, then, in path order, the
/// modules of the set that `order` does not list, so every module keeps a place.
pub fn render(order: &[String], set: &BTreeSet<String>) -> String {
    let mut seen = BTreeSet::new();
    let mut out = String::new();
    for line in order {
        let hit = if set.contains(line) {
            Some(line.clone())
        } else {
            line.strip_suffix(".ko").and_then(|stem| {
                SUFFIXES
                    .iter()
                    .map(|s| format!("{stem}{s}"))
                    .find(|p| set.contains(p))
            })
        };
        if let Some(path) = hit {
            if seen.insert(path) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for module in set.iter().filter(|m| !seen.contains(*m)) {
        out.push_str(module);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_for_compressed_files_and_appends_the_rest() {
        let order = parse(
            "kernel/fs/fat/fat.ko\n/lib/modules/1/kernel/fs/fat/vfat.ko\nkernel/fs/ext4/ext4.ko\n",
            "1",
        );
        assert_eq!(order[1], "kernel/fs/fat/vfat.ko");
        let set: BTreeSet<String> = [
            "kernel/fs/fat/vfat.ko.zst",
            "kernel/fs/fat/fat.ko",
            "kernel/a.ko",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            render(&order, &set),
            "kernel/fs/fat/fat.ko\nkernel/fs/fat/vfat.ko\nkernel/a.ko\n"
        );
    }
}
