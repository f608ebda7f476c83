//! Making new bytes the current overlay of a medium: the one crash-safe sequence behind
//! `commit`, `package` and `revert` (lbu/README.md, "Crash safety").
//!
//! 1. write the bytes to a temporary file on the medium (a name the boot never considers),
//!    fsync, read back and check them;
//! 2. back up the current overlay of the same name as a hard link or copy (never a rename);
//! 3. move every other overlay that must go (`commit -d`, another cipher of this host at
//!    `revert`) to a backup name, so that at no instant two overlays are visible to the boot;
//! 4. signature: with a signing key and an old signature, a `.sig` valid for both the old and
//!    the new bytes goes in first; with a signing key and no overlay under the name yet (first
//!    commit, `-d` after a host rename) the new `.sig` goes in first; with signing turned off,
//!    the old `.sig` goes first (the old overlay is unsigned for a moment, never badly signed);
//! 5. rename the temporary file over the overlay, fsync the file and the directory;
//! 6. the new signature alone, then the generation file `HOST.apkovl.generation` (after the
//!    overlay: a crash in between leaves overlay N with file N-1, which still boots);
//! 7. delete what step 3 moved aside.
//!
//! At every instant the medium holds at most one overlay under a boot name, complete and (with
//! a key) validly signed; the only window without one is between 3 and 5, and only when other
//! overlays had to go, and then the previous configuration is a backup `lbu revert` can bring
//! back. The fault-injection points (`LBU_FAULT`, test builds only) are named after the steps.

use crate::backup;
use crate::durable::{self, write_temp};
use crate::{fault, Error, IoResultExt};
use apk::trust::PrivateKey;
use std::path::Path;

/// The key that signs statements (`SIGNING_KEY`).
pub struct Signer {
    key: PrivateKey,
    /// The public half's file name, as the `.sig` names it (`basename(KEY).pub`).
    pub name: String,
}

impl Signer {
    /// Load `path` (an ed25519 private key).
    pub fn load(path: &Path) -> Result<Signer, Error> {
        let key = PrivateKey::load(path)?;
        let name = format!(
            "{}.pub",
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        Ok(Signer { key, name })
    }

    /// The `.sig` text stating that `data` is `host`'s overlay of `generation`, made at `time`.
    pub fn sign(
        &self,
        data: &[u8],
        host: &str,
        time: u64,
        generation: u64,
    ) -> Result<String, Error> {
        Ok(overlays::sign_statement(
            data, host, time, generation, &self.key, &self.name,
        )?)
    }

    /// The public half, for checking what this key signed before.
    pub fn public(&self) -> Vec<(String, apk::trust::PublicKey)> {
        vec![(self.name.clone(), self.key.public())]
    }
}

/// What to publish.
pub struct Publication<'a> {
    /// The medium's directory.
    pub dir: &'a Path,
    /// The host the overlay is for (the file name's stem).
    pub host: &'a str,
    /// The file name of the new current overlay.
    pub name: &'a str,
    /// The bytes as stored.
    pub data: &'a [u8],
    /// Checks the written temporary file.
    pub check: &'a dyn Fn(&Path) -> Result<(), Error>,
    /// Signs a statement when set.
    pub signer: Option<&'a Signer>,
    /// The commit time the statement carries (Unix seconds).
    pub time: u64,
    /// Other overlays (file names in `dir`) that must not survive.
    pub others: &'a [String],
    /// Keep the replaced overlay as a backup (`commit`, `revert`; not `package`).
    pub backup: bool,
}

/// What [`publish`] did.
#[derive(Debug, Default)]
pub struct Published {
    /// The backup of the replaced overlay.
    pub backup: Option<String>,
    /// The generation the statement carries.
    pub generation: Option<u64>,
    /// The other overlays removed.
    pub removed: Vec<String>,
}

/// The next generation for `host` in `dir`: one above the generation file and every statement
/// for this host that `signer` signed in the medium's `.sig` files (backups included), so that
/// no older signed overlay on the medium is ever at or above the new minimum. Statements by
/// other keys, or forged, are not counted: they do not verify at boot either.
pub fn next_generation(dir: &Path, host: &str, signer: &Signer) -> Result<u64, Error> {
    let public = signer.key.public();
    let mut newest = overlays::generation::read(dir, host)?.unwrap_or(0);
    for n in backup::names_in(dir)? {
        if !n.ends_with(".sig") {
            continue;
        }
        let Ok(Some(sig)) = overlays::read_signature(&dir.join(&n)) else {
            continue;
        };
        for s in overlays::sign::signed_statements(&sig, &public) {
            if s.host == host {
                newest = newest.max(s.generation);
            }
        }
    }
    newest.checked_add(1).ok_or_else(|| Error::Verify {
        path: dir.join(overlays::generation::file_name(host)),
        reason: "generation counter exhausted".into(),
    })
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// The text after `.apkovl.tar.gz` of an overlay name (`""`, `.age`, `.aes-256-cbc`).
fn suffix(name: &str) -> &str {
    name.find(".apkovl.tar.gz")
        .map_or("", |p| &name[p + ".apkovl.tar.gz".len()..])
}

/// Run the sequence of the module documentation.
pub fn publish(p: &Publication<'_>) -> Result<Published, Error> {
    let dir = p.dir;
    let mut done = Published::default();
    // 1. The new bytes, durable and checked, under a name the boot never looks at.
    let tmp = write_temp(dir, p.data)?;
    fault("after-temp-write");
    (p.check)(&tmp.path)?;
    let new_sig = match p.signer {
        Some(s) => {
            let generation = next_generation(dir, p.host, s)?;
            done.generation = Some(generation);
            Some(s.sign(p.data, p.host, p.time, generation)?)
        }
        None => None,
    };
    // 2. The replaced overlay stays available as a backup.
    if p.backup {
        done.backup = backup::make_backup(dir, p.host, p.name, suffix(p.name))?;
    }
    // 3. Others leave the boot's view before the new overlay enters it.
    let mut aside = Vec::new();
    for o in p.others {
        let path = dir.join(o);
        let meta = std::fs::metadata(&path).at(&path)?;
        let owner = overlays::host_of(o).unwrap_or("unknown");
        let to = backup::fresh_name(
            dir,
            owner,
            std::os::unix::fs::MetadataExt::mtime(&meta),
            suffix(o),
        );
        durable::rename(dir, o, &to)?;
        if dir.join(format!("{o}.sig")).exists() {
            durable::rename(dir, &format!("{o}.sig"), &format!("{to}.sig"))?;
        }
        aside.push((o.clone(), to));
    }
    if !aside.is_empty() {
        fault("after-aside");
    }
    // 4. A signature file that holds for the old overlay and the new one, or none at all.
    let sig_name = format!("{}.sig", p.name);
    let old_sig = read_optional(&dir.join(&sig_name))?;
    match (&new_sig, &old_sig) {
        (Some(new), Some(old)) => {
            let both = [new.as_bytes(), old].concat();
            durable::write_file(dir, &sig_name, &both)?;
            fault("after-sig");
        }
        (None, Some(_)) => {
            durable::remove(dir, &sig_name)?;
            durable::fsync_dir(dir)?;
            fault("after-sig");
        }
        // No overlay under this name yet (a first commit, or `-d` after a host rename, whose
        // previous overlay was signed): the signature goes in first, so the overlay is never
        // visible unsigned. An unsigned overlay already there keeps its state until step 6.
        (Some(new), None) if !dir.join(p.name).exists() => {
            durable::write_file(dir, &sig_name, new.as_bytes())?;
            fault("after-sig");
        }
        _ => {}
    }
    fault("before-rename");
    // 5. The switch.
    durable::install(tmp, dir, p.name)?;
    fault("after-rename");
    // 6. The new signature alone (or the first one: unsigned until now is what it was before),
    // then the generation the boot will require from now on.
    if let (Some(new), Some(generation)) = (&new_sig, done.generation) {
        durable::write_file(dir, &sig_name, new.as_bytes())?;
        fault("after-final-sig");
        durable::write_file(
            dir,
            &overlays::generation::file_name(p.host),
            &overlays::generation::render(generation),
        )?;
    }
    // 7. What had to go.
    for (o, to) in aside {
        durable::remove(dir, &to)?;
        durable::remove(dir, &format!("{to}.sig"))?;
        done.removed.push(o);
    }
    if !done.removed.is_empty() {
        durable::fsync_dir(dir)?;
    }
    Ok(done)
}
