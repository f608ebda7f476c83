//! Listing an overlay without applying it: what `lbu` verifies after writing a new apkovl
//! (decompress and list every member) and what `lbu status` compares against the live system.
//! Contents are summarised by SHA-256 so two archives can be compared member by member.

use crate::apply::{gunzip, parse};
use crate::deleted::{self, MANIFEST};
use crate::Error;
use sha2::{Digest, Sha256};

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
    /// Name without `./` and without a trailing `/`.
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
    /// Link target (symlinks and hard links).
    pub link: String,
    /// SHA-256 of the content (files).
    pub sha256: [u8; 32],
    /// Content size.
    pub size: u64,
}

/// The members of an overlay (gzip tar) plus the deletions its manifest records.
pub fn read_members(gz: &[u8], limit: u64) -> Result<(Vec<Member>, Vec<String>), Error> {
    let tarball = gunzip(gz, limit)?;
    let mut out = Vec::new();
    let mut deletions = Vec::new();
    for m in parse(&tarball)? {
        let name = String::from_utf8_lossy(&m.name);
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if name == MANIFEST {
            deletions = deleted::parse(&String::from_utf8_lossy(&m.data))?;
            continue;
        }
        let kind = match m.kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => MemberKind::File,
            tar::EntryType::Directory => MemberKind::Dir,
            tar::EntryType::Symlink => MemberKind::Symlink,
            tar::EntryType::Link => MemberKind::HardLink,
            _ => MemberKind::Other,
        };
        out.push(Member {
            name,
            kind,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: m.mtime,
            link: String::from_utf8_lossy(&m.link)
                .trim_start_matches("./")
                .to_string(),
            sha256: Sha256::digest(&m.data).into(),
            size: m.data.len() as u64,
        });
    }
    Ok((out, deletions))
}
