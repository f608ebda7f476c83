//! The package pool: every package the solver may choose from (installed ones, repository indexes,
//! files given on the command line), deduplicated by identity (`C:` is the primary key across
//! repositories and the installed database), with a provider table per name.

use crate::dep::Dependency;
use crate::package::{Checksum, Package};
use crate::repo::Repository;
use crate::text::Text;
use rustc_hash::FxHashMap as HashMap;
use std::hash::BuildHasher;
use std::path::PathBuf;

/// Index of a package in the pool.
pub type PkgId = usize;

/// Packages moved from a repository into the pool at a time (see [`Pool::take_repository`]).
const MOVE_CHUNK: usize = 512;

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
    /// Repositories listing it (indexes into [`Pool::repos`]). Most packages are in one: it is
    /// kept inline (a `Vec` cost each of the real indexes' 23k packages a heap block).
    pub repos: smallvec::SmallVec<[usize; 1]>,
    /// Index in the installed database, when installed.
    pub installed: Option<usize>,
    /// A package file given directly (`apk add ./x.apk`). Boxed, as `cached`: rare, and a
    /// pointer (8 bytes) in each of the pool's packages instead of a `PathBuf` (24).
    pub file: Option<Box<PathBuf>>,
    /// A copy in the cache.
    pub cached: Option<Box<PathBuf>>,
    /// Tag it was pinned to when installed (`s:`).
    pub installed_tag: Option<Box<str>>,
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
    /// The packages with an identity, found by it: a table of package ids hashed by their
    /// identities (8 bytes an entry, where a map keyed by a copy of each identity took 48; the
    /// real indexes' 23k: 0.3 instead of 2.4 MiB). Hashed with a per-process random SipHash
    /// key: identities come from unsigned input too (a cache's `installed` file), and FxHash lets
    /// chosen identities collide (every key starting with Fx's seed hashes alike), which would
    /// make loading quadratic.
    by_identity: hashbrown::HashTable<PkgId>,
    identity_hash: std::collections::hash_map::RandomState,
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

impl Pool {
    /// An empty pool for the given architectures.
    pub fn new(arches: Vec<String>) -> Self {
        Pool {
            arches,
            ..Default::default()
        }
    }

    fn add(&mut self, pkg: Package) -> (PkgId, bool) {
        if let Some(id) = self.by_identity(&pkg.identity) {
            return (id, false);
        }
        let id = self.packages.len();
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
        let hashed = !pkg.identity.is_empty();
        self.packages.push(PoolPackage {
            pkg,
            repos: smallvec::SmallVec::new(),
            installed: None,
            file: None,
            cached: None,
            installed_tag: None,
            virtual_pkg: false,
        });
        if hashed {
            let (packages, state) = (&self.packages, &self.identity_hash);
            let h = state.hash_one(&packages[id].pkg.identity.0[..]);
            self.by_identity
                .insert_unique(h, id, |&i| state.hash_one(&packages[i].pkg.identity.0[..]));
        }
        (id, true)
    }

    /// Add an installed package (database index `db_index`).
    pub fn add_installed(&mut self, pkg: &Package, db_index: usize, tag: Option<String>) -> PkgId {
        let (id, _) = self.add(pkg.clone());
        self.packages[id].installed = Some(db_index);
        self.packages[id].installed_tag = tag.map(String::into_boxed_str);
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
    /// empty): the real 23k-package indexes are then held once, not twice, not even while they
    /// move. The pool grows and the repository's vector shrinks by [`MOVE_CHUNK`] packages at a
    /// time (the pool's order stays the index's), so the peak is one chunk above the pool, not a
    /// whole second copy of the index (community's 17.5k packages: 6.5 MiB).
    pub fn take_repository(&mut self, repo: &mut Repository) -> usize {
        let ri = self.add_repo_info(repo);
        let mut rest = std::mem::take(&mut repo.packages);
        // The provider table grows once, now, before the packages move (its growth copies it:
        // both tables live for a moment), not half-way, on top of the pool and the rest of
        // the vector. Names and provides overlap little between repositories.
        let names = rest.iter().map(|p| 1 + p.provides.len()).sum();
        self.providers.reserve(names);
        rest.reverse();
        while !rest.is_empty() {
            let n = rest.len().min(MOVE_CHUNK);
            self.packages.reserve_exact(n);
            for _ in 0..n {
                if let Some(p) = rest.pop() {
                    self.add_from_repository(ri, p);
                }
            }
            rest.shrink_to_fit();
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
        if let Some(id) = self.by_identity(&p.identity) {
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
        let (id, _) = self.add(p);
        self.packages[id].repos.push(ri);
    }

    /// Add a package file given on the command line.
    pub fn add_file(&mut self, pkg: Package, path: PathBuf) -> PkgId {
        let (id, _) = self.add(pkg);
        self.packages[id].file = Some(Box::new(path));
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
        self.packages[id].cached = Some(Box::new(path));
        id
    }

    /// Record a cached copy of a package.
    pub fn set_cached(&mut self, id: PkgId, path: PathBuf) {
        self.packages[id].cached = Some(Box::new(path));
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
        if c.is_empty() {
            return None;
        }
        let h = self.identity_hash.hash_one(&c.0[..]);
        self.by_identity
            .find(h, |&i| self.packages[i].pkg.identity == *c)
            .copied()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoSpec;

    fn repo(url: &str, packages: Vec<Package>) -> Repository {
        Repository {
            spec: RepoSpec::parse(url).unwrap(),
            packages,
            description: None,
            pkg_dir: None,
            masked: false,
            index: PathBuf::from(url),
            skipped: Vec::new(),
            unknown_letters: false,
            unknown_uppercase: false,
        }
    }

    fn pkg(i: usize) -> Package {
        let mut p = Package {
            identity: Checksum((i as u32).to_be_bytes().repeat(5)),
            name: format!("p{i}").into(),
            version: "1-r0".into(),
            ..Package::default()
        };
        p.apply_letter(b'p', &format!("cmd:c{} so:shared.so.1", i % 7))
            .unwrap();
        p
    }

    /// Moving a repository several chunks long into the pool keeps the index's order, finds
    /// every package by identity, merges a package already known (installed, then listed by two
    /// repositories) into one, and lists every provider.
    #[test]
    fn take_repository_keeps_order_identities_and_providers() {
        let n = 3 * MOVE_CHUNK + 17;
        let mut pool = Pool::new(vec!["x86_64".into()]);
        let installed = pool.add_installed(&pkg(5), 0, Some("edge".into()));
        let mut first = repo("/a", (0..n).map(pkg).collect());
        let mut second = repo("/b", vec![pkg(n - 1), pkg(n)]);
        assert_eq!(pool.take_repository(&mut first), 0);
        assert_eq!(pool.take_repository(&mut second), 1);
        assert!(first.packages.is_empty() && second.packages.is_empty());
        // The installed p5 is pool entry 0; the others follow in index order.
        assert_eq!(pool.packages.len(), n + 1);
        assert_eq!(installed, 0);
        assert_eq!(pool.packages[0].pkg.name, "p5");
        assert_eq!(pool.packages[0].installed_tag.as_deref(), Some("edge"));
        let names: Vec<&str> = pool.packages[1..]
            .iter()
            .map(|p| p.pkg.name.as_str())
            .collect();
        let expected: Vec<String> = (0..=n)
            .filter(|&i| i != 5)
            .map(|i| format!("p{i}"))
            .collect();
        assert_eq!(names, expected);
        for i in 0..=n {
            let id = pool.by_identity(&pkg(i).identity).unwrap();
            assert_eq!(pool.packages[id].pkg.name, format!("p{i}"));
        }
        assert_eq!(pool.by_identity(&Checksum(vec![0xff; 20])), None);
        assert_eq!(pool.by_identity(&Checksum::default()), None);
        let last = pool.by_identity(&pkg(n - 1).identity).unwrap();
        assert_eq!(pool.packages[last].repos.as_slice(), &[0, 1]);
        assert_eq!(pool.packages[0].repos.as_slice(), &[0]);
        assert_eq!(pool.providers("so:shared.so.1").len(), n + 1);
        assert_eq!(
            pool.providers("cmd:c3").len(),
            (0..=n).filter(|i| i % 7 == 3).count()
        );
        assert_eq!(
            pool.by_name("p7"),
            vec![pool.by_identity(&pkg(7).identity).unwrap()]
        );
        // A package without identity is never merged.
        let anon = Package {
            name: "anon".into(),
            version: "1".into(),
            ..Package::default()
        };
        let a = pool.add_virtual(anon.clone());
        let b = pool.add_virtual(anon);
        assert_ne!(a, b);
    }
}
