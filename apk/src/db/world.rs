//! `etc/apk/world`: the dependencies the user asked for (apk-format.md §4.4).

use crate::dep::{DepError, Dependency};
use crate::package::name_order;

/// Parse world text. Stops at the first bad token like apk v3 and reports it, returning the valid
/// tokens seen before it so a caller that must not fail (PID 1) can continue with them.
pub fn parse(text: &str) -> (Vec<Dependency>, Option<DepError>) {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        match Dependency::parse(tok, true) {
            Ok(d) => out.push(d),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Sort world entries the way apk writes them.
pub fn sort(world: &mut [Dependency]) {
    world.sort_by(|a, b| {
        name_order(&a.name, &b.name).then_with(|| a.to_string().cmp(&b.to_string()))
    });
}

/// World text: sorted, one per line.
pub fn write(world: &[Dependency]) -> String {
    let mut w = world.to_vec();
    sort(&mut w);
    w.dedup();
    w.iter().map(|d| format!("{d}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write() {
        let (w, e) = parse("zlib\nalpine-base\n!foo b@testing>=2\n");
        assert!(e.is_none());
        assert_eq!(write(&w), "alpine-base\nb@testing>=2\n!foo\nzlib\n");
        let (w, e) = parse("a b== c");
        assert_eq!(w.len(), 1);
        assert!(e.is_some());
    }
}
