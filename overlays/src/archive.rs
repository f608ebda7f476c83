//! Reading an apkovl archive: the one reader behind [`crate::apply`], [`crate::read_members`]
//! and [`crate::read_contents`], so every consumer of overlay members sees the same names and
//! refuses the same hostile ones.
//!
//! The gzip stream is decompressed once into memory, refusing more than the caller's limit (at
//! most [`crate::MAX_UNPACKED_BYTES`]); members are then parsed with the apk core's tar reader
//! and their contents are slices of that one buffer (no second copy of the decompressed
//! overlay). Member names go through [`clean_name`]: `./` prefixes and repeated `/` are dropped,
//! absolute names and `..` components are refused, and [`Links`] refuses names that pass
//! through a symlink the same overlay created (the "symlink, then a member through it" escape).

use crate::{Error, MAX_UNPACKED_BYTES};
use apk::tar::{Entry, Reader};
use std::collections::HashSet;
use std::io::Read;

/// One member of an overlay: its tar header and its content, borrowed from the decompressed
/// archive.
pub(crate) struct RawMember<'a> {
    /// The header (name as stored).
    pub(crate) entry: Entry,
    /// The content (empty for anything but regular files).
    pub(crate) data: &'a [u8],
}

/// Decompress a gzip stream (several members are fine, as `gzip` concatenations are), refusing
/// more than `limit` bytes; the limit is capped at [`MAX_UNPACKED_BYTES`].
pub fn gunzip(gz: &[u8], limit: u64) -> Result<Vec<u8>, Error> {
    let limit = limit.min(MAX_UNPACKED_BYTES);
    // The gzip trailer's ISIZE (size mod 2^32 of the last member) is a hint for the one
    // allocation; it comes from the input, so it is only trusted up to the limit and up to what
    // deflate can expand these bytes to (at most 1032 to 1).
    let hint = gz
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes([gz[at], gz[at + 1], gz[at + 2], gz[at + 3]]))
        .map_or(0, u64::from)
        .min(limit)
        .min((gz.len() as u64).saturating_mul(1032));
    let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).saturating_add(1));
    let mut dec = flate2::read::MultiGzDecoder::new(gz).take(limit + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| Error::Gzip(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(Error::TooLarge(limit));
    }
    Ok(out)
}

/// Every member of a decompressed archive, in archive order; a broken tar stream is an error
/// before any member is returned.
pub(crate) fn parse(tarball: &[u8]) -> Result<Vec<RawMember<'_>>, Error> {
    let terr = |e: apk::tar::TarError| Error::Tar(e.to_string());
    let mut reader = Reader::new(tarball);
    let mut out = Vec::new();
    while let Some(entry) = reader.next_entry().map_err(terr)? {
        let data = reader.content().map_err(terr)?;
        out.push(RawMember { entry, data });
    }
    Ok(out)
}

/// A member name made relative and checked: `./` prefixes and repeated `/` dropped; absolute
/// names and `..` refused (the reason is returned). `None` is the root itself (`./`). Otherwise
/// the components and whether the name ends with `/` (a directory in old archives).
pub(crate) fn clean_name(name: &str) -> Result<Option<(Vec<String>, bool)>, String> {
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    let comps: Vec<String> = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    if comps.iter().any(|c| c == "..") {
        return Err("path contains `..`".into());
    }
    if comps.is_empty() {
        return Ok(None);
    }
    Ok(Some((comps, name.ends_with('/'))))
}

/// The symlinks an overlay created so far: later members must not pass through them.
#[derive(Default)]
pub(crate) struct Links(HashSet<String>);

impl Links {
    /// Remember a symlink member (its cleaned, joined name).
    pub(crate) fn add(&mut self, rel: &str) {
        self.0.insert(rel.to_string());
    }

    /// The first parent of `comps` that is a symlink of this overlay.
    pub(crate) fn through(&self, comps: &[String]) -> Option<String> {
        let mut cur = String::new();
        for c in &comps[..comps.len().saturating_sub(1)] {
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(c);
            if self.0.contains(&cur) {
                return Some(cur);
            }
        }
        None
    }

    /// Check a member name, including that it does not pass through a symlink of this overlay.
    /// `None` for the root itself.
    pub(crate) fn check(&self, name: &str) -> Result<Option<(Vec<String>, bool)>, String> {
        let Some((comps, slash)) = clean_name(name)? else {
            return Ok(None);
        };
        if let Some(l) = self.through(&comps) {
            return Err(format!("path goes through symlink {l} from this overlay"));
        }
        Ok(Some((comps, slash)))
    }

    /// Check a hard link's target the same way (it names an earlier member).
    pub(crate) fn check_link_target(&self, target: &str) -> Result<Vec<String>, String> {
        let (comps, _) = clean_name(target)
            .map_err(|why| format!("hard link target: {why}"))?
            .ok_or("hard link to the root")?;
        if let Some(l) = self.through(&comps) {
            return Err(format!(
                "hard link target goes through symlink {l} from this overlay"
            ));
        }
        Ok(comps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_or_refused() {
        assert_eq!(
            clean_name("./etc//motd").unwrap(),
            Some((vec!["etc".to_string(), "motd".to_string()], false))
        );
        assert_eq!(
            clean_name("etc/x/").unwrap(),
            Some((vec!["etc".to_string(), "x".to_string()], true))
        );
        assert_eq!(clean_name("./").unwrap(), None);
        assert_eq!(clean_name("/etc/shadow").unwrap_err(), "absolute path");
        assert_eq!(clean_name("etc/../../x").unwrap_err(), "path contains `..`");
        let mut links = Links::default();
        links.add("etc/up");
        assert_eq!(
            links.check("etc/up/x").unwrap_err(),
            "path goes through symlink etc/up from this overlay"
        );
        assert!(links.check("etc/up").is_ok());
        assert_eq!(
            links.check_link_target("../etc/passwd").unwrap_err(),
            "hard link target: path contains `..`"
        );
    }

    #[test]
    fn gunzip_is_bounded_by_the_limit_and_the_maximum() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &[0u8; 4096]).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(gunzip(&gz, 4096).unwrap().len(), 4096);
        assert_eq!(
            gunzip(&gz, 4095).unwrap_err().to_string(),
            "overlay: archive larger than the limit of 4095 bytes"
        );
        // A lying ISIZE trailer does not make the reader allocate more than the limit.
        let mut lying = gz.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(gunzip(&lying, 4096), Err(Error::Gzip(_))));
    }
}
