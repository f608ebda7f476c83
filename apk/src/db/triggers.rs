//! `lib/apk/db/triggers`: `<identity> <glob>...` per package with a `.trigger` script (§4.3).

use crate::package::Checksum;

/// Parse the triggers file; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<(Checksum, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let id = Checksum::parse(it.next()?)?;
            Some((id, it.map(str::to_string).collect()))
        })
        .collect()
}

/// Write the triggers file.
pub fn write(entries: &[(Checksum, Vec<String>)]) -> String {
    entries
        .iter()
        .map(|(id, g)| format!("{id} {}\n", g.join(" ")))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip() {
        let t = "Q1AYNx2pLOAHRYZQgv3nM8TNtvRWY= /bin /usr/bin /sbin /usr/sbin /lib/modules/*\n";
        assert_eq!(super::write(&super::parse(t)), t);
    }
}
