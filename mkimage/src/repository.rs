//! The packages of a medium: source repositories verified with the trusted keys, the world's
//! closure chosen by apk's solver, each package file checked against its verified index entry,
//! and a new index for exactly the packages copied, signed with the medium key.
//!
//! Packages are never modified or re-signed (README, Trust): apk trusts them
//! through the signed index, by `C:` identity and `datahash`, so the copy must be byte-identical
//! and its index entry must be the source entry unchanged. We check that here, at build time,
//! rather than letting a corrupt or substituted source file fail at the first boot.

use std::fs;
use std::io;
use std::path::PathBuf;

use apk::archive::{self, ArchiveError, Mode};
use apk::dep::Dependency;
use apk::fetch::Network;
use apk::output::Out;
use apk::package::Package;
use apk::pool::{PkgId, Pool};
use apk::repo::Location;
use apk::repo::{LoadOptions, RepoError, RepoSpec, Repository};
use apk::solver::{self, SolverOptions};
use apk::trust::Keyring;

use crate::error::Error;
use crate::SignKey;

/// A package chosen for the medium and the verified file it is copied from.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The source index entry, written unchanged into the medium's index.
    pub pkg: Package,
    /// The package file in its source repository.
    pub file: PathBuf,
}

/// What goes into the boot repository (`apks/`) and the extra one (`apks-extra/`).
#[derive(Clone, Debug, Default)]
pub struct Closure {
    /// The closure of `--world`.
    pub boot: Vec<Selected>,
    /// The closure of `--world-extra` (or every package of `--extra-repository`), minus `boot`.
    pub extra: Vec<Selected>,
}

/// What to resolve, against what.
pub struct Request<'a> {
    /// Primary architecture.
    pub arch: &'a str,
    /// Boot sources (`--repository`).
    pub repositories: &'a [RepoSpec],
    /// Extra sources (`--extra-repository`).
    pub extra_repositories: &'a [RepoSpec],
    /// Trusted keys for the source indexes.
    pub keys: &'a Keyring,
    /// Accept unsigned or untrusted source indexes.
    pub allow_untrusted: bool,
    /// `--world`.
    pub world: &'a [Dependency],
    /// `--world-extra`.
    pub world_extra: &'a [Dependency],
    /// Downloads for `http(s)://` sources (`None`: local sources only).
    pub net: Option<&'a Network>,
}

/// Loads one source repository: a local one from its files, a remote one through `net` (its
/// index downloaded into the cache after its signature was checked).
pub fn load(
    spec: &RepoSpec,
    arch: &str,
    keys: &Keyring,
    allow_untrusted: bool,
    net: Option<&Network>,
) -> Result<Repository, Error> {
    let opts = LoadOptions {
        arch,
        keys,
        allow_untrusted,
        no_network: true,
        cache_dir: None,
    };
    if let (Location::Remote(_), Some(net)) = (&spec.location, net) {
        // Quiet: the error (or the caller's progress line) says what happened.
        let quiet = Out {
            verbosity: -1,
            ..Out::default()
        };
        return net
            .open_index(spec, &opts, &quiet)
            .map(|(repo, _)| repo)
            .map_err(|f| Error::Repository {
                index: apk::http::url::display(&f.url),
                reason: f.reason,
            });
    }
    Repository::load(spec, &opts).map_err(|(index, e)| {
        let reason = match e {
            RepoError::Archive(ArchiveError::Untrusted) => {
                "UNTRUSTED signature (add its key with --keys-dir, or use --allow-untrusted)"
                    .to_string()
            }
            RepoError::NoNetwork => {
                "a remote repository: mkimage reads local repositories only".to_string()
            }
            e => e.to_string(),
        };
        Error::Repository { index, reason }
    })
}

/// Resolves the closures. `progress` gets one line per loaded repository.
pub fn resolve(req: &Request<'_>, progress: &mut dyn FnMut(&str)) -> Result<Closure, Error> {
    let mut pool = Pool::new(vec![req.arch.to_string()]);
    for spec in req.repositories {
        let repo = load(spec, req.arch, req.keys, req.allow_untrusted, req.net)?;
        progress(&format!(
            "Loaded {} ({} packages)",
            spec.url,
            repo.packages.len()
        ));
        pool.add_repository(&repo);
    }
    // The boot closure is solved before the extra sources join the pool: the boot repository must
    // not depend on them.
    let boot_ids = if req.world.is_empty() {
        Vec::new()
    } else {
        solve(&pool, req.world, "--world")?
    };
    let mut extra_repo_ids = Vec::new();
    for spec in req.extra_repositories {
        let repo = load(spec, req.arch, req.keys, req.allow_untrusted, req.net)?;
        progress(&format!(
            "Loaded {} ({} packages)",
            spec.url,
            repo.packages.len()
        ));
        extra_repo_ids.push(pool.add_repository(&repo));
    }
    let extra_ids: Vec<PkgId> = if !req.world_extra.is_empty() {
        // The booted system has the boot closure installed; pin it so the extra closure is what
        // `apk add` on that system would fetch, never a second version of a boot package.
        let mut world = req.world.to_vec();
        world.extend(req.world_extra.iter().cloned());
        for &id in &boot_ids {
            let p = &pool.packages[id].pkg;
            let pin =
                Dependency::parse(&format!("{}={}", p.name, p.version), false).map_err(|e| {
                    Error::Repository {
                        index: p.name_version(),
                        reason: e.to_string(),
                    }
                })?;
            world.push(pin);
        }
        solve(&pool, &world, "--world-extra")?
            .into_iter()
            .filter(|id| !boot_ids.contains(id))
            .collect()
    } else {
        // No extra world: the extra repositories are copied whole.
        (0..pool.packages.len())
            .filter(|&id| {
                pool.packages[id]
                    .repos
                    .iter()
                    .any(|r| extra_repo_ids.contains(r))
            })
            .filter(|id| !boot_ids.contains(id))
            .collect()
    };
    Ok(Closure {
        boot: selected(&pool, &boot_ids, req.net)?,
        extra: selected(&pool, &extra_ids, req.net)?,
    })
}

fn solve(pool: &Pool, world: &[Dependency], option: &'static str) -> Result<Vec<PkgId>, Error> {
    let solution = solver::solve(pool, world, &SolverOptions::default());
    if let Some(report) = solution.errors {
        // apk-tools wraps its error block at 50 columns when not on a terminal.
        return Err(Error::Unsatisfiable {
            option,
            report: report.render(50),
        });
    }
    Ok(solution.selected)
}

fn selected(pool: &Pool, ids: &[PkgId], net: Option<&Network>) -> Result<Vec<Selected>, Error> {
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let pp = &pool.packages[id];
        let file = match (apk::prefetch::package_path(pool, id), net) {
            (Some(f), _) => f,
            (None, Some(net)) => download(net, pool, id)?,
            (None, None) => {
                return Err(Error::Repository {
                    index: pp.pkg.name_version(),
                    reason: "no local repository holds this package".into(),
                })
            }
        };
        out.push(Selected {
            pkg: pp.pkg.clone(),
            file,
        });
    }
    out.sort_by(|a, b| apk::package::index_order(&a.pkg, &b.pkg));
    Ok(out)
}

/// Downloads a package of a remote source into the cache (verified first; a copy already there
/// is verified again when it is copied to the medium).
fn download(net: &Network, pool: &Pool, id: PkgId) -> Result<PathBuf, Error> {
    let pkg = &pool.packages[id].pkg;
    let fail = |reason: String| Error::Repository {
        index: pkg.name_version(),
        reason,
    };
    let cache = net
        .cache
        .as_ref()
        .ok_or_else(|| fail("no cache directory for downloads".into()))?;
    let path = cache.package_path(pkg);
    if path.is_file() {
        return Ok(path);
    }
    let buf = net
        .download_package(pool, id, &mut |_, _| {})
        .map_err(|e| fail(e.to_string()))?;
    cache
        .store(&apk::cache::package_name(pkg), &buf)
        .map_err(|e| fail(format!("{}: {e}", cache.dir.display())))
}

/// Checks a package file against its verified index entry (size, `C:` identity over the control
/// member, `datahash` over the data) and returns its size.
pub fn verify_package(sel: &Selected) -> Result<u64, Error> {
    let bad = |reason: String| Error::Package {
        path: sel.file.clone(),
        reason,
    };
    let buf = fs::read(&sel.file).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => bad(format!(
            "missing, but listed by its repository index as {}",
            sel.pkg.name_version()
        )),
        _ => bad(e.to_string()),
    })?;
    if sel.pkg.identity.0.len() != 20 {
        return Err(bad(
            "its index entry has no SHA-1 identity (C:) to check it against".into(),
        ));
    }
    if sel.pkg.size != 0 && sel.pkg.size != buf.len() as u64 {
        return Err(bad(format!(
            "{} bytes, but its index entry says {} (S:)",
            buf.len(),
            sel.pkg.size
        )));
    }
    archive::open_package(&buf, &Mode::Identity(&sel.pkg.identity))
        .map_err(|e| bad(format!("does not match its index entry: {e}")))?;
    Ok(buf.len() as u64)
}

/// The medium's `APKINDEX.tar.gz` for `packages`: apk's index text (entries unchanged, sorted as
/// apk sorts them), signed with the medium key. The result is verified with the key's public half
/// before it is returned, so a medium never carries an index its own key rejects.
pub fn signed_index(
    packages: &[Package],
    description: &str,
    key: &SignKey,
    mtime: u64,
) -> Result<Vec<u8>, Error> {
    let text = apk::index::write(packages);
    let body = archive::index_body(&text, Some(description), mtime);
    let key_error = |reason: String| Error::Key {
        path: key.path.clone(),
        reason,
    };
    let mut out = archive::signature_member(&key.key, &key.name, &body, mtime)
        .map_err(|e| key_error(e.to_string()))?;
    out.extend_from_slice(&body);
    let mut ring = Keyring::default();
    ring.insert(&key.name, key.key.public());
    archive::open_index(&out, &ring, false)
        .map_err(|e| key_error(format!("the signed index does not verify: {e}")))?;
    Ok(out)
}

/// The directory a package goes to in a repository on the medium: `<arch>/` of the index, or the
/// package's own `A:` when it differs (`noarch`): apk-tools fetches `REPO/<A:>/<name>-<ver>.apk`.
pub fn package_dir<'a>(pkg: &'a Package, arch: &'a str) -> &'a str {
    match pkg.arch.as_deref() {
        Some(a) if !a.is_empty() && !a.contains('/') && a != "." && a != ".." => a,
        _ => arch,
    }
}

/// `<name>-<version>.apk`, refusing names that would leave the directory.
pub fn package_file_name(pkg: &Package) -> Result<String, Error> {
    let name = format!("{}.apk", pkg.name_version());
    if name.contains('/') || name.starts_with('.') {
        return Err(Error::Repository {
            index: pkg.name_version(),
            reason: "not a usable file name".into(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noarch_packages_go_to_their_own_directory() {
        let mut p = Package {
            name: "a".into(),
            version: "1-r0".into(),
            ..Default::default()
        };
        assert_eq!(package_dir(&p, "x86_64"), "x86_64");
        p.arch = Some("noarch".into());
        assert_eq!(package_dir(&p, "x86_64"), "noarch");
        p.arch = Some("../x".into());
        assert_eq!(package_dir(&p, "x86_64"), "x86_64");
        assert_eq!(package_file_name(&p).unwrap(), "a-1-r0.apk");
    }

    #[test]
    fn signed_index_verifies_with_the_key_and_only_with_it() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("medium.rsa");
        let key = SignKey {
            key: apk::trust::PrivateKey::generate_ed25519(),
            name: "medium.rsa.pub".into(),
            path,
        };
        let pkg = Package {
            name: "a".into(),
            version: "1-r0".into(),
            identity: apk::package::Checksum(vec![7; 20]),
            size: 10,
            ..Default::default()
        };
        let bytes = signed_index(std::slice::from_ref(&pkg), "test", &key, 1_700_000_000).unwrap();
        let mut ring = Keyring::default();
        ring.insert("medium.rsa.pub", key.key.public());
        let idx = archive::open_index(&bytes, &ring, false).unwrap();
        assert_eq!(idx.signed_by.as_deref(), Some("medium.rsa.pub"));
        assert_eq!(idx.description.as_deref(), Some("test"));
        assert_eq!(idx.text, apk::index::write(std::slice::from_ref(&pkg)));
        let mut other = Keyring::default();
        other.insert(
            "medium.rsa.pub",
            apk::trust::PrivateKey::generate_ed25519().public(),
        );
        assert_eq!(
            archive::open_index(&bytes, &other, false).unwrap_err(),
            ArchiveError::BadSignature
        );
        // Same input, same bytes (ed25519 signatures are deterministic).
        assert_eq!(
            bytes,
            signed_index(&[pkg], "test", &key, 1_700_000_000).unwrap()
        );
    }
}
