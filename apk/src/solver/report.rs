//! `ERROR: unable to select packages:` and its reasons, worded and wrapped as apk-tools prints them.

use super::search::{pkg_tags, Attempt, Req};
use super::Origin;
use crate::dep::Dependency;
use crate::pool::{PkgId, Pool, Provider};
use crate::text::Text;
use std::collections::HashSet;
use std::fmt::Write;

/// One reason line of an error report: label and items.
pub type Reason = (String, Vec<String>);

/// The `ERROR: unable to select packages:` report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorReport {
    /// `(label, [(reason label, items)])` blocks in print order.
    pub blocks: Vec<(String, Vec<Reason>)>,
}

fn world_item(d: &Dependency) -> String {
    format!("world[{d}]")
}

fn pkg_item(pool: &Pool, id: PkgId, d: &Dependency) -> String {
    format!(
        "{}[{}]",
        pool.packages[id].pkg.name_version(),
        d.to_string_no_tag()
    )
}

impl ErrorReport {
    pub(super) fn build(
        pool: &Pool,
        at: &Attempt<'_>,
        world: &[Dependency],
    ) -> Option<ErrorReport> {
        let mut blocks = Vec::new();
        let item = |r: &Req| match r.from {
            Origin::World => world_item(&r.dep),
            Origin::Pkg(p) => pkg_item(pool, p, &r.dep),
        };
        let mut reported_names: HashSet<Text> = HashSet::new();
        let missing_block = |name: &str, blocks: &mut Vec<(String, Vec<Reason>)>| {
            let required: Vec<String> = at
                .reqs
                .get(name)
                .into_iter()
                .flatten()
                .filter(|r| at.active(r.from))
                .map(&item)
                .collect();
            let virt: Vec<&Provider> = pool
                .providers(name)
                .iter()
                .filter(|p| !p.real && p.version.is_none())
                .collect();
            if !virt.is_empty() && pool.by_name(name).is_empty() {
                let mut provided: Vec<String> = virt
                    .iter()
                    .map(|p| pool.packages[p.pkg].pkg.name.to_string())
                    .collect();
                provided.sort();
                provided.dedup();
                blocks.push((
                    format!("{name} (virtual)"),
                    vec![
                        (
                            "note:".to_string(),
                            "please select one of the 'provided by' packages explicitly"
                                .split(' ')
                                .map(str::to_string)
                                .collect(),
                        ),
                        ("provided by:".to_string(), provided),
                        ("required by:".to_string(), required),
                    ],
                ));
            } else {
                blocks.push((
                    format!("{name} (no such package)"),
                    vec![("required by:".to_string(), required)],
                ));
            }
        };
        // Unresolved world names first.
        let mut sorted_world = world.to_vec();
        crate::db::world::sort(&mut sorted_world);
        for d in sorted_world.iter().filter(|d| !d.conflict) {
            if at.missing.contains(&d.name) && reported_names.insert(d.name.clone()) {
                missing_block(&d.name, &mut blocks);
            }
        }
        for &id in &at.selected {
            let pp = &pool.packages[id];
            let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
            if !pp.pkg.arch_ok(&pool.arches) || pp.pkg.broken {
                reasons.push(("error:".into(), vec!["uninstallable".into()]));
                if !pp.pkg.arch_ok(&pool.arches) {
                    reasons.push((
                        "arch:".into(),
                        vec![pp.pkg.arch.clone().unwrap_or_default().to_string()],
                    ));
                }
            }
            if let Some(pin) = at.pins.get(&id) {
                if !at.allowed(id, pin) {
                    let mut tags: Vec<String> = pkg_tags(pool, id)
                        .into_iter()
                        .flatten()
                        .map(|t| format!("@{t}"))
                        .collect();
                    tags.dedup();
                    reasons.push(("masked in:".into(), tags));
                }
            }
            if !pool.obtainable(id) {
                let masked: Vec<String> = pp
                    .repos
                    .iter()
                    .filter(|&&r| pool.repos[r].masked)
                    .map(|_| "--no-network".to_string())
                    .take(1)
                    .collect();
                if !masked.is_empty() {
                    reasons.push(("masked in:".into(), masked));
                }
            }
            let mut breaks = Vec::new();
            let mut satisfies = Vec::new();
            let mut conflicts = Vec::new();
            for (name, ver) in at.names_of(id) {
                let prov = Provider {
                    pkg: id,
                    version: ver,
                    real: name == pp.pkg.name,
                };
                for r in at
                    .reqs
                    .get(&name)
                    .into_iter()
                    .flatten()
                    .filter(|r| at.active(r.from))
                {
                    if pool.provider_matches(&r.dep, &prov) {
                        satisfies.push(item(r));
                    } else if at.forced_by.iter().any(|&(p, _)| p == id) || !at.satisfied(&r.dep) {
                        breaks.push(item(r));
                    }
                }
                for c in at.conflicts.iter().filter(|c| {
                    at.active(c.from) && c.dep.name == name && c.from != Origin::Pkg(id)
                }) {
                    if pool.provider_matches(&c.dep, &prov) {
                        breaks.push(item(c));
                    }
                }
            }
            // Two selected packages providing the same name with a version (apk-format.md §8.2).
            for p in pp.pkg.provides.iter().filter(|p| p.version.is_some()) {
                for other in at.selected_providers(&p.name) {
                    if other.pkg == id || other.version.is_none() {
                        continue;
                    }
                    let op = &pool.packages[other.pkg].pkg;
                    let shown = op
                        .provides
                        .iter()
                        .find(|q| q.name == p.name)
                        .map(|q| q.to_string())
                        .unwrap_or_else(|| p.name.to_string());
                    conflicts.push(format!("{}[{shown}]", op.name_version()));
                }
            }
            if !conflicts.is_empty() {
                reasons.push(("conflicts:".into(), conflicts));
            }
            if !breaks.is_empty() {
                breaks.dedup();
                reasons.push(("breaks:".into(), breaks));
            }
            if !reasons.is_empty() {
                satisfies.dedup();
                if !satisfies.is_empty() {
                    reasons.push(("satisfies:".into(), satisfies));
                }
                blocks.push((pp.pkg.name_version(), reasons));
            }
            for d in pp.pkg.depends.iter().filter(|d| !d.conflict) {
                if at.missing.contains(&d.name) && reported_names.insert(d.name.clone()) {
                    missing_block(&d.name, &mut blocks);
                }
            }
        }
        for name in &at.missing {
            if reported_names.insert(name.clone()) {
                missing_block(name, &mut blocks);
            }
        }
        if blocks.is_empty() {
            None
        } else {
            Some(ErrorReport { blocks })
        }
    }

    /// Render the report (without the `ERROR:` header) wrapped at `width`.
    pub fn render(&self, width: usize) -> String {
        let mut out = String::new();
        for (label, reasons) in &self.blocks {
            let _ = writeln!(out, "  {label}:");
            for (r, items) in reasons {
                out.push_str(&indented(&format!("    {r}"), items, width));
            }
        }
        out
    }
}

/// apk's `apk_print_indented`: items after a prefix, wrapped when `x + len + 1 >= width`, the
/// continuation indented to the prefix length + 1.
pub fn indented(prefix: &str, items: &[String], width: usize) -> String {
    let mut out = String::from(prefix);
    let indent = prefix.len() + 1;
    let mut x = prefix.len();
    let mut first = true;
    for it in items {
        if !first && x + it.len() + 1 >= width {
            out.push('\n');
            out.push_str(&" ".repeat(indent - 1));
            x = indent - 1;
        }
        out.push(' ');
        out.push_str(it);
        x += it.len() + 1;
        first = false;
    }
    out.push('\n');
    out
}
