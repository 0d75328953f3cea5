//! Tensor lifetime analysis over an execution order: where each tensor is produced, every position
//! that uses it, and the device memory a run without offloading needs.

use super::graph::{Graph, OpId, TensorId};

/// Lifetimes of every tensor of a graph under one execution order; positions index the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetimes {
    /// Position of the producing operator (`None` for graph inputs).
    pub def: Vec<Option<usize>>,
    /// Positions of the operators that read or update the tensor, ascending.
    pub uses: Vec<Vec<usize>>,
}

impl Lifetimes {
    /// Analyses `g` executed in `order` (a valid order of all its operators).
    pub fn analyse(g: &Graph, order: &[OpId]) -> Self {
        let mut def = vec![None; g.tensors.len()];
        let mut uses = vec![Vec::new(); g.tensors.len()];
        for (pos, &o) in order.iter().enumerate() {
            let op = &g.ops[o];
            for t in op.uses() {
                if uses[t].last() != Some(&pos) {
                    uses[t].push(pos);
                }
            }
            for &t in &op.outputs {
                def[t] = Some(pos);
            }
        }
        Self { def, uses }
    }

    /// Position of the last use (`None` when never used).
    pub fn last_use(&self, t: TensorId) -> Option<usize> {
        self.uses[t].last().copied()
    }

    /// First use at or after position `pos`.
    pub fn next_use(&self, t: TensorId, pos: usize) -> Option<usize> {
        let u = &self.uses[t];
        u.get(u.partition_point(|&p| p < pos)).copied()
    }

    /// Last use strictly before position `pos`.
    pub fn prev_use(&self, t: TensorId, pos: usize) -> Option<usize> {
        let u = &self.uses[t];
        u.partition_point(|&p| p < pos).checked_sub(1).map(|k| u[k])
    }

    /// Position after which a non-persistent tensor is dead: its last use, or its definition when
    /// nothing reads it (`None` for an unused graph input).
    pub fn death(&self, t: TensorId) -> Option<usize> {
        self.last_use(t).or(self.def[t])
    }
}

/// Peak device bytes of running `order` with everything resident: graph inputs from the start,
/// each operator's outputs from its start, non-persistent tensors freed after their last use.
pub fn no_offload_peak(g: &Graph, order: &[OpId]) -> u64 {
    let lt = Lifetimes::analyse(g, order);
    let mut used: u64 = (0..g.tensors.len())
        .filter(|&t| lt.def[t].is_none())
        .map(|t| g.tensors[t].bytes)
        .sum();
    let mut peak = used;
    let mut dying: Vec<Vec<TensorId>> = vec![Vec::new(); order.len()];
    for t in 0..g.tensors.len() {
        if !g.tensors[t].persistent
            && let Some(d) = lt.death(t)
        {
            dying[d].push(t);
        }
    }
    for (pos, &o) in order.iter().enumerate() {
        used += g.ops[o]
            .outputs
            .iter()
            .map(|&t| g.tensors[t].bytes)
            .sum::<u64>();
        peak = peak.max(used);
        used -= dying[pos].iter().map(|&t| g.tensors[t].bytes).sum::<u64>();
    }
    peak
}

/// Bytes operator `o` needs resident while it runs: its uses and outputs.
pub fn working_set(g: &Graph, o: OpId) -> u64 {
    let op = &g.ops[o];
    let mut ts: Vec<TensorId> = op.uses().chain(op.outputs.iter().copied()).collect();
    ts.sort_unstable();
    ts.dedup();
    ts.iter().map(|&t| g.tensors[t].bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::random_graph;

    #[test]
    fn lifetimes_equal_brute_force_on_random_graphs() {
        let mut rng = sim::rng::stream(9, "supernode/lifetime-test");
        for _ in 0..30 {
            let g = random_graph(&mut rng, 25);
            let order: Vec<OpId> = (0..g.ops.len()).collect();
            let lt = Lifetimes::analyse(&g, &order);
            for t in 0..g.tensors.len() {
                let def = order.iter().position(|&o| g.ops[o].outputs.contains(&t));
                assert_eq!(lt.def[t], def);
                let uses: Vec<usize> = (0..order.len())
                    .filter(|&p| g.ops[order[p]].uses().any(|u| u == t))
                    .collect();
                assert_eq!(lt.uses[t], uses);
                for pos in 0..order.len() {
                    assert_eq!(
                        lt.next_use(t, pos),
                        uses.iter().copied().find(|&p| p >= pos)
                    );
                }
            }
            // brute-force peak: at each position, bytes of tensors alive there
            let mut peak = 0;
            for pos in 0..order.len() {
                let live: u64 = (0..g.tensors.len())
                    .filter(|&t| {
                        let born = lt.def[t].is_none_or(|d| d <= pos);
                        let alive = g.tensors[t].persistent || lt.death(t).is_none_or(|d| d >= pos);
                        born && alive
                    })
                    .map(|t| g.tensors[t].bytes)
                    .sum();
                peak = peak.max(live);
            }
            assert_eq!(no_offload_peak(&g, &order), peak);
        }
    }
}
