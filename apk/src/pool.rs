//! The package pool: every package the solver may choose from (installed ones, repository indexes,
//! files given on the command line), deduplicated by identity (`C:` is the primary key across
//! repositories and the installed database), with a provider table per name.

use crate::dep::Dependency;
use crate::package::{Checksum, Package};
use crate::repo::Repository;
use crate::text::Text;
use rustc_hash::FxHashMap as HashMap;
use std::path::PathBuf;

/// Index of a package in the pool.
pub type PkgId = usize;

/// A repository as the solver sees it.
#[derive(Clone, Debug, Default)]
pub struct RepoInfo {
    /// `@tag`, `None` when untagged (always allowed).
    pub tag: Option<String>,
    /// Masked (`--no-network`): usable only for cached packages.
    pub masked: bool,
    /// Where its package files are.
    pub pkg_dir: Option<PathBuf>,
    /// The URL as configured.
    pub url: String,
}

/// One package in the pool.
#[derive(Clone, Debug)]
pub struct PoolPackage {
    /// Metadata.
    pub pkg: Package,
    /// Repositories listing it (indexes into [`Pool::repos`]).
    pub repos: Vec<usize>,
    /// Index in the installed database, when installed.
    pub installed: Option<usize>,
    /// A package file given directly (`apk add ./x.apk`).
    pub file: Option<PathBuf>,
    /// A copy in the cache.
    pub cached: Option<PathBuf>,
    /// Tag it was pinned to when installed (`s:`).
    pub installed_tag: Option<String>,
    /// A virtual package made by `apk add -t` (no file, never opened).
    pub virtual_pkg: bool,
}

/// A provider of a name.
#[derive(Clone, Debug)]
pub struct Provider {
    /// The package.
    pub pkg: PkgId,
    /// Provided version (`None` for an unversioned provide).
    pub version: Option<Text>,
    /// Whether this is the package's own name.
    pub real: bool,
}

/// The pool.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    /// Packages.
    pub packages: Vec<PoolPackage>,
    /// Repositories.
    pub repos: Vec<RepoInfo>,
    /// Architectures accepted (first = primary).
    pub arches: Vec<String>,
    /// Keyed by a per-process random SipHash key: identities come from unsigned input too (a
    /// cache's `installed` file), and FxHash lets chosen identities collide (every key starting
    /// with Fx's seed hashes alike), which would make loading quadratic.
    by_identity: std::collections::HashMap<IdentityKey, PkgId>,
    providers: HashMap<Text, Providers>,
}

/// The providers of one name. Most of the real indexes' ~50k names have exactly one, kept
/// inline: no allocation per name.
#[derive(Clone, Debug)]
enum Providers {
    One(Provider),
    Many(Vec<Provider>),
}

impl Providers {
    fn push(&mut self, p: Provider) {
        match self {
            Providers::One(first) => *self = Providers::Many(vec![first.clone(), p]),
            Providers::Many(v) => v.push(p),
        }
    }

    fn as_slice(&self) -> &[Provider] {
        match self {
            Providers::One(p) => std::slice::from_ref(p),
            Providers::Many(v) => v,
        }
    }
}

/// A package identity as a map key without a heap copy (identities are 16, 20 or 32 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum IdentityKey {
    Inline(u8, [u8; 32]),
    Long(Vec<u8>),
}

impl IdentityKey {
    fn of(c: &Checksum) -> IdentityKey {
        let b = &c.0;
        if b.len() <= 32 {
            let mut k = [0u8; 32];
            k[..b.len()].copy_from_slice(b);
            IdentityKey::Inline(b.len() as u8, k)
        } else {
            IdentityKey::Long(b.clone())
        }
    }
}

impl Pool {
    /// An empty pool for the given architectures.
    pub fn new(arches: Vec<String>) -> Self {
        Pool {
            arches,
            ..Default::default()
        }
    }

    fn add(&mut self, pkg: Package) -> (PkgId, bool) {
        if !pkg.identity.is_empty() {
            if let Some(&id) = self.by_identity.get(&IdentityKey::of(&pkg.identity)) {
                return (id, false);
            }
        }
        let id = self.packages.len();
        if !pkg.identity.is_empty() {
            self.by_identity.insert(IdentityKey::of(&pkg.identity), id);
        }
        let own = (&pkg.name, Some(&pkg.version), true);
        let provides = pkg
            .provides
            .iter()
            .map(|p| (&p.name, p.version.as_ref(), false));
        for (name, version, real) in std::iter::once(own).chain(provides) {
            let provider = Provider {
                pkg: id,
                version: version.cloned(),
                real,
            };
            match self.providers.get_mut(name.as_str()) {
                Some(list) => list.push(provider),
                None => {
                    self.providers
                        .insert(name.clone(), Providers::One(provider));
                }
            }
        }
        self.packages.push(PoolPackage {
            pkg,
            repos: Vec::new(),
            installed: None,
            file: None,
            cached: None,
            installed_tag: None,
            virtual_pkg: false,
        });
        (id, true)
    }

    /// Add an installed package (database index `db_index`).
    pub fn add_installed(&mut self, pkg: &Package, db_index: usize, tag: Option<String>) -> PkgId {
        let (id, _) = self.add(pkg.clone());
        self.packages[id].installed = Some(db_index);
        self.packages[id].installed_tag = tag;
        id
    }

    /// Add a loaded repository and its packages (copied: `repo` stays whole).
    pub fn add_repository(&mut self, repo: &Repository) -> usize {
        let ri = self.add_repo_info(repo);
        for p in &repo.packages {
            self.add_from_repository(ri, p.clone());
        }
        ri
    }

    /// Add a loaded repository, moving its packages into the pool (`repo.packages` is left
    /// empty): the real 23k-package indexes are then held once, not twice.
    pub fn take_repository(&mut self, repo: &mut Repository) -> usize {
        let ri = self.add_repo_info(repo);
        self.packages.reserve_exact(repo.packages.len());
        for p in std::mem::take(&mut repo.packages) {
            self.add_from_repository(ri, p);
        }
        ri
    }

    fn add_repo_info(&mut self, repo: &Repository) -> usize {
        self.repos.push(RepoInfo {
            tag: repo.spec.tag.clone(),
            masked: repo.masked,
            pkg_dir: repo.pkg_dir.clone(),
            url: repo.spec.url.clone(),
        });
        self.repos.len() - 1
    }

    fn add_from_repository(&mut self, ri: usize, p: Package) {
        if !p.identity.is_empty() {
            if let Some(&id) = self.by_identity.get(&IdentityKey::of(&p.identity)) {
                if self.packages[id].installed.is_some() && self.packages[id].repos.is_empty() {
                    // Index metadata is authoritative for fields the database may lack.
                    let old = &mut self.packages[id].pkg;
                    *old = Package {
                        replaces: std::mem::take(&mut old.replaces),
                        replaces_priority: old.replaces_priority,
                        ..p
                    };
                }
                if !self.packages[id].repos.contains(&ri) {
                    self.packages[id].repos.push(ri);
                }
                return;
            }
        }
        let (id, _) = self.add(p);
        self.packages[id].repos.push(ri);
    }

    /// Add a package file given on the command line.
    pub fn add_file(&mut self, pkg: Package, path: PathBuf) -> PkgId {
        let (id, _) = self.add(pkg);
        self.packages[id].file = Some(path);
        id
    }

    /// Add a virtual package (`apk add -t`).
    pub fn add_virtual(&mut self, pkg: Package) -> PkgId {
        let (id, _) = self.add(pkg);
        self.packages[id].virtual_pkg = true;
        id
    }

    /// Add a package known only from the cache (`<cache>/installed`).
    pub fn add_cached(&mut self, pkg: Package, path: PathBuf) -> PkgId {
        let (id, _) = self.add(pkg);
        self.packages[id].cached = Some(path);
        id
    }

    /// Record a cached copy of a package.
    pub fn set_cached(&mut self, id: PkgId, path: PathBuf) {
        self.packages[id].cached = Some(path);
    }

    /// Providers of a name (empty when unknown).
    pub fn providers(&self, name: &str) -> &[Provider] {
        self.providers
            .get(name)
            .map(Providers::as_slice)
            .unwrap_or(&[])
    }

    /// Whether any package is named or provides `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    /// Package by identity.
    pub fn by_identity(&self, c: &Checksum) -> Option<PkgId> {
        self.by_identity.get(&IdentityKey::of(c)).copied()
    }

    /// All packages with this real name.
    pub fn by_name(&self, name: &str) -> Vec<PkgId> {
        self.providers(name)
            .iter()
            .filter(|p| p.real)
            .map(|p| p.pkg)
            .collect()
    }

    /// Whether the package file can be obtained (installed counts: it can stay).
    pub fn obtainable(&self, id: PkgId) -> bool {
        let p = &self.packages[id];
        p.file.is_some()
            || p.virtual_pkg
            || p.cached.is_some()
            || p.installed.is_some()
            || p.repos.iter().any(|&r| !self.repos[r].masked)
    }

    /// Whether the package is in some repository at all (masked or not) or a file.
    pub fn in_repository(&self, id: PkgId) -> bool {
        let p = &self.packages[id];
        !p.repos.is_empty() || p.file.is_some() || p.virtual_pkg
    }

    /// Whether a dependency is satisfied by this provider entry.
    pub fn provider_matches(&self, dep: &Dependency, prov: &Provider) -> bool {
        if dep.is_checksum_pin() {
            return dep
                .version
                .as_deref()
                .and_then(Checksum::parse)
                .is_some_and(|c| c == self.packages[prov.pkg].pkg.identity);
        }
        dep.version_matches(prov.version.as_deref())
    }
}
