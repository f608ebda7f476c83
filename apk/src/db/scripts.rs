//! `lib/apk/db/scripts.tar` (and `scripts.tar.gz` when reading): stored package scripts, one entry
//! per script named `<name>-<ver>.<identity>.<type>` (apk-format.md §4.2).

use crate::package::Checksum;
use crate::tar::{self, Entry, Kind};
use std::collections::BTreeMap;

/// Scripts by (identity, type).
pub type Scripts = BTreeMap<(Checksum, String), Script>;

/// One stored script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// `name-version` of the owner.
    pub name_version: String,
    /// Body.
    pub body: Vec<u8>,
    /// Entry mtime (the package build time).
    pub mtime: u64,
    /// Position in the package's control section (scripts are written back in that order).
    pub seq: usize,
}

/// Parse a scripts tar. Entries whose name does not fit the pattern are skipped.
pub fn parse(data: &[u8]) -> Result<Scripts, tar::TarError> {
    let mut out = Scripts::new();
    let mut r = tar::Reader::new(data);
    let mut seq = 0;
    while let Some(e) = r.next_entry()? {
        seq += 1;
        let body = r.read_all(16 << 20)?;
        let Some((rest, kind)) = e.name.rsplit_once('.') else {
            continue;
        };
        let Some((nv, id)) = rest.rsplit_once('.') else {
            continue;
        };
        let Some(id) = Checksum::parse(id) else {
            continue;
        };
        out.insert(
            (id, kind.to_string()),
            Script {
                name_version: nv.to_string(),
                body,
                mtime: e.mtime,
                seq,
            },
        );
    }
    Ok(out)
}

/// Write a scripts tar with entries in the given identity order.
pub fn write(scripts: &Scripts, order: &[Checksum]) -> Vec<u8> {
    let mut w = tar::Writer::new(Vec::new(), tar::Magic::Gnu);
    w.pax_extras = false;
    for id in order {
        let mut mine: Vec<(&String, &Script)> = scripts
            .range((id.clone(), String::new())..)
            .take_while(|((sid, _), _)| sid == id)
            .map(|((_, k), s)| (k, s))
            .collect();
        // apk writes a package's scripts in script-type order.
        mine.sort_by_key(|(k, s)| {
            (
                crate::archive::SCRIPTS
                    .iter()
                    .position(|x| x == k)
                    .unwrap_or(usize::MAX),
                s.seq,
            )
        });
        for (kind, s) in mine {
            let sid = id;
            let mut e = Entry::new(
                &format!("{}.{}.{}", s.name_version, sid, kind),
                Kind::File,
                0o755,
            );
            e.mtime = s.mtime;
            // Writing into a Vec cannot fail.
            let _ = w.append(&e, &s.body);
        }
    }
    w.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let id = Checksum::parse("Q1AYNx2pLOAHRYZQgv3nM8TNtvRWY=").unwrap();
        let mut s = Scripts::new();
        s.insert(
            (id.clone(), "post-install".into()),
            Script {
                name_version: "busybox-1.36.1-r15".into(),
                body: b"#!/bin/sh\n".to_vec(),
                mtime: 5,
                seq: 1,
            },
        );
        s.insert(
            (id.clone(), "trigger".into()),
            Script {
                name_version: "busybox-1.36.1-r15".into(),
                body: b"x".to_vec(),
                mtime: 5,
                seq: 2,
            },
        );
        let data = write(&s, std::slice::from_ref(&id));
        let mut r = tar::Reader::new(&data[..]);
        assert_eq!(
            r.next_entry().unwrap().unwrap().name,
            "busybox-1.36.1-r15.Q1AYNx2pLOAHRYZQgv3nM8TNtvRWY=.post-install"
        );
        assert_eq!(parse(&data).unwrap(), s);
    }
}
