//! `modules.builtin`: the paths of the modules compiled into the kernel. A built-in module has
//! nothing to load and nothing to embed, and its name is never looked up as an alias.

use std::collections::HashSet;

use crate::name::module_name;

/// The (normalised) names of the built-in modules. Lines that name no module file are skipped.
pub fn parse(text: &str) -> HashSet<String> {
    text.lines().filter_map(|l| module_name(l.trim())).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_of_builtin_modules() {
        let b = super::parse("kernel/drivers/tty/serial/8250/8250.ko\nkernel/fs/ext-4/x-y.ko\n\n");
        assert!(b.contains("8250") && b.contains("x_y"));
        assert_eq!(b.len(), 2);
    }
}
