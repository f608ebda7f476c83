//! Reading an overlay without applying it: what `lbu` verifies after writing a new apkovl
//! (decompress and list every member), what `lbu status` compares against the live system and
//! what `lbu diff` shows. Contents are summarised by SHA-256 so two archives can be compared
//! member by member; [`read_contents`] returns the contents of chosen files.
//!
//! The rules of [`crate::apply`] hold here too, but as errors: a member named `/etc/shadow`, one
//! with `..`, one through a symlink of the same overlay, or a hard link to such a name makes the
//! whole overlay unreadable ([`Error::UnsafeMember`]). A reader that printed or opened such a
//! name would read outside the tree it meant (the `lbu diff` hole of issue 13, item 9).

use crate::archive::{self, Links, RawMember};
use crate::deleted::{self, MANIFEST};
use crate::{Error, MAX_OVERLAY_BYTES, MAX_UNPACKED_BYTES};
use apk::tar::Kind;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Member type, as far as status comparisons care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Hard link to an earlier member.
    HardLink,
    /// Device, FIFO or anything else.
    Other,
}

/// One member's metadata and content digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Name, relative, without `./`, repeated `/` or a trailing `/`.
    pub name: String,
    /// Type.
    pub kind: MemberKind,
    /// Permission bits.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time.
    pub mtime: u64,
    /// Link target: a symlink's as stored (without a leading `./`), a hard link's as a cleaned
    /// member name.
    pub link: String,
    /// SHA-256 of the content (files).
    pub sha256: [u8; 32],
    /// Content size.
    pub size: u64,
}

/// A member whose name passed every check, with its cleaned name.
struct Checked<'m, 'a> {
    raw: &'m RawMember<'a>,
    name: String,
    /// The cleaned hard link target.
    link: Option<String>,
}

/// Decompress and parse an overlay, checking every name as [`crate::apply`] does, but failing
/// on the first unsafe one. Returns the checked members (without the manifest) and the manifest.
fn checked<'m, 'a>(
    members: &'m [RawMember<'a>],
) -> Result<(Vec<Checked<'m, 'a>>, Vec<String>), Error> {
    let mut links = Links::default();
    let mut out = Vec::with_capacity(members.len());
    let mut deletions = Vec::new();
    for m in members {
        let unsafe_member = |reason: String| Error::UnsafeMember {
            name: m.entry.name.clone(),
            reason,
        };
        let Some((comps, _)) = links.check(&m.entry.name).map_err(unsafe_member)? else {
            continue;
        };
        let name = comps.join("/");
        if name == MANIFEST && m.entry.kind == Kind::File {
            let text =
                std::str::from_utf8(m.data).map_err(|_| Error::Manifest("not UTF-8".into()))?;
            deletions = deleted::parse(text)?;
            continue;
        }
        let link = match m.entry.kind {
            Kind::HardLink => Some(
                links
                    .check_link_target(&m.entry.link)
                    .map_err(unsafe_member)?
                    .join("/"),
            ),
            Kind::Symlink => {
                links.add(&name);
                None
            }
            _ => None,
        };
        out.push(Checked { raw: m, name, link });
    }
    Ok((out, deletions))
}

fn unpack(gz: &[u8]) -> Result<Vec<u8>, Error> {
    if gz.len() as u64 > MAX_OVERLAY_BYTES {
        return Err(Error::OverlayTooLarge {
            size: gz.len() as u64,
        });
    }
    archive::gunzip(gz, MAX_UNPACKED_BYTES)
}

/// The members of an overlay (gzip tar, at most [`MAX_OVERLAY_BYTES`], decompressing to at most
/// [`MAX_UNPACKED_BYTES`]) plus the deletions its manifest records.
pub fn read_members(gz: &[u8]) -> Result<(Vec<Member>, Vec<String>), Error> {
    let tarball = unpack(gz)?;
    let raw = archive::parse(&tarball)?;
    let (members, deletions) = checked(&raw)?;
    let out = members
        .into_iter()
        .map(|c| {
            let e = &c.raw.entry;
            let kind = match e.kind {
                Kind::File => MemberKind::File,
                Kind::Dir => MemberKind::Dir,
                Kind::Symlink => MemberKind::Symlink,
                Kind::HardLink => MemberKind::HardLink,
                Kind::CharDev | Kind::BlockDev | Kind::Fifo => MemberKind::Other,
            };
            Member {
                name: c.name,
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
                link: c
                    .link
                    .unwrap_or_else(|| e.link.trim_start_matches("./").to_string()),
                sha256: Sha256::digest(c.raw.data).into(),
                size: c.raw.data.len() as u64,
            }
        })
        .collect();
    Ok((out, deletions))
}

/// The contents of the regular files `names` (member names as [`read_members`] gives them) of
/// an overlay; a hard link yields its target's content. Names that are not regular files or
/// hard links to one are left out. The same checks and bounds as [`read_members`] apply.
pub fn read_contents(gz: &[u8], names: &[&str]) -> Result<HashMap<String, Vec<u8>>, Error> {
    let tarball = unpack(gz)?;
    let raw = archive::parse(&tarball)?;
    let (members, _) = checked(&raw)?;
    let wanted: HashSet<&str> = names.iter().copied().collect();
    // Later members replace earlier ones of the same name, as on extraction.
    let mut files: HashMap<&str, &[u8]> = HashMap::new();
    let mut out = HashMap::new();
    for c in &members {
        let data = match (c.raw.entry.kind, &c.link) {
            (Kind::File, _) => Some(c.raw.data),
            (Kind::HardLink, Some(target)) => files.get(target.as_str()).copied(),
            _ => None,
        };
        match data {
            Some(d) => {
                files.insert(c.name.as_str(), d);
                if wanted.contains(c.name.as_str()) {
                    out.insert(c.name.clone(), d.to_vec());
                }
            }
            None => {
                files.remove(c.name.as_str());
                out.remove(&c.name);
            }
        }
    }
    Ok(out)
}
