//! The order of a parallel module load, as a pure state machine: several load orders
//! ("chains", each what [`super::ModuleDb::load_order`] gives for one request: dependencies
//! first, softdeps around) merged into one graph. A module may start once every module before it
//! in every chain that holds it has settled (loaded or failed, as the sequential loader goes on
//! after a failure too); modules of independent chains run side by side. Each module appears
//! once. Chains that contradict each other (a before b in one, b before a in another: corrupt
//! metadata) fall back to one chain, the modules in first-seen order: never a deadlock.
use std::collections::{BTreeSet, HashMap, HashSet};

/// What may start now, what waits for what.
#[derive(Debug, Clone)]
pub struct Schedule {
    names: Vec<String>,
    /// Predecessors of each module not yet settled.
    waiting_on: Vec<usize>,
    /// Modules that wait for each module.
    dependants: Vec<Vec<usize>>,
    /// Modules that may start, lowest (first seen) first.
    ready: BTreeSet<usize>,
    settled: Vec<bool>,
    remaining: usize,
}

impl Schedule {
    /// The schedule of `chains` (each in load order).
    pub fn new(chains: &[Vec<String>]) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for m in chains.iter().flatten() {
            if !index.contains_key(m.as_str()) {
                index.insert(m, names.len());
                names.push(m.clone());
            }
        }
        let mut edges: HashSet<(usize, usize)> = HashSet::new();
        for chain in chains {
            for pair in chain.windows(2) {
                let (a, b) = (index[pair[0].as_str()], index[pair[1].as_str()]);
                if a != b {
                    edges.insert((a, b));
                }
            }
        }
        let s = Self::from_edges(names.clone(), &edges);
        if s.is_acyclic() {
            return s;
        }
        // Contradicting chains: one chain in first-seen order.
        let serial: HashSet<(usize, usize)> = (1..names.len()).map(|i| (i - 1, i)).collect();
        Self::from_edges(names, &serial)
    }

    fn from_edges(names: Vec<String>, edges: &HashSet<(usize, usize)>) -> Self {
        let n = names.len();
        let mut waiting_on = vec![0; n];
        let mut dependants = vec![Vec::new(); n];
        let mut sorted: Vec<&(usize, usize)> = edges.iter().collect();
        sorted.sort();
        for &&(a, b) in &sorted {
            waiting_on[b] += 1;
            dependants[a].push(b);
        }
        let ready = (0..n).filter(|&i| waiting_on[i] == 0).collect();
        Self {
            names,
            waiting_on,
            dependants,
            ready,
            settled: vec![false; n],
            remaining: n,
        }
    }

    /// Whether every module can be reached (Kahn's algorithm on a copy).
    fn is_acyclic(&self) -> bool {
        let mut waiting = self.waiting_on.clone();
        let mut queue: Vec<usize> = self.ready.iter().copied().collect();
        let mut seen = 0;
        while let Some(i) = queue.pop() {
            seen += 1;
            for &d in &self.dependants[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    queue.push(d);
                }
            }
        }
        seen == self.names.len()
    }

    /// How many modules the schedule holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A module that may start now (the first seen of those), or `None`: all started, or the
    /// rest waits for modules still loading.
    pub fn start_next(&mut self) -> Option<String> {
        let i = self.ready.pop_first()?;
        Some(self.names[i].clone())
    }

    /// `module` settled (loaded or failed): what waited only for it may start.
    pub fn settle(&mut self, module: &str) {
        let Some(i) = self.names.iter().position(|n| n == module) else {
            return;
        };
        if std::mem::replace(&mut self.settled[i], true) {
            return;
        }
        self.remaining -= 1;
        for d in self.dependants[i].clone() {
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 {
                self.ready.insert(d);
            }
        }
    }

    /// Whether every module has settled.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains(c: &[&[&str]]) -> Vec<Vec<String>> {
        c.iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    /// Drains everything that may start now.
    fn wave(s: &mut Schedule) -> Vec<String> {
        std::iter::from_fn(|| s.start_next()).collect()
    }

    #[test]
    fn independent_chains_start_together_and_keep_their_order() {
        let mut s = Schedule::new(&chains(&[
            &["scsi_mod", "libata", "ata_piix"],
            &["virtio_blk"],
        ]));
        assert_eq!(s.len(), 4);
        assert_eq!(wave(&mut s), ["scsi_mod", "virtio_blk"]);
        s.settle("virtio_blk");
        assert_eq!(wave(&mut s), Vec::<String>::new());
        s.settle("scsi_mod");
        assert_eq!(wave(&mut s), ["libata"]);
        s.settle("libata");
        assert_eq!(wave(&mut s), ["ata_piix"]);
        assert!(!s.is_done());
        s.settle("ata_piix");
        assert!(s.is_done());
    }

    #[test]
    fn a_shared_module_runs_once_after_every_predecessor() {
        let mut s = Schedule::new(&chains(&[
            &["scsi_mod", "sr_mod"],
            &["cdrom", "sr_mod"],
            &["scsi_mod", "sd_mod"],
        ]));
        assert_eq!(s.len(), 4);
        assert_eq!(wave(&mut s), ["scsi_mod", "cdrom"]);
        s.settle("scsi_mod");
        // sr_mod still waits for cdrom; sd_mod does not.
        assert_eq!(wave(&mut s), ["sd_mod"]);
        s.settle("cdrom");
        assert_eq!(wave(&mut s), ["sr_mod"]);
        s.settle("sd_mod");
        s.settle("sr_mod");
        assert!(s.is_done());
    }

    #[test]
    fn contradicting_chains_fall_back_to_one_chain() {
        let mut s = Schedule::new(&chains(&[&["a", "b"], &["b", "a"], &["c"]]));
        assert_eq!(wave(&mut s), ["a"]);
        s.settle("a");
        assert_eq!(wave(&mut s), ["b"]);
        s.settle("b");
        assert_eq!(wave(&mut s), ["c"]);
        s.settle("c");
        assert!(s.is_done());
    }

    #[test]
    fn settling_twice_or_unknown_changes_nothing() {
        let mut s = Schedule::new(&chains(&[&["a", "b", "c"]]));
        assert_eq!(wave(&mut s), ["a"]);
        s.settle("a");
        s.settle("a");
        s.settle("zzz");
        assert_eq!(wave(&mut s), ["b"]);
        s.settle("b");
        assert_eq!(wave(&mut s), ["c"]);
        s.settle("c");
        assert!(s.is_done());
        let empty = Schedule::new(&[]);
        assert!(empty.is_empty() && empty.is_done());
    }

    #[test]
    fn a_repeated_module_in_one_chain_is_not_its_own_predecessor() {
        let mut s = Schedule::new(&chains(&[&["a", "a", "b"]]));
        assert_eq!(wave(&mut s), ["a"]);
        s.settle("a");
        assert_eq!(wave(&mut s), ["b"]);
    }
}
