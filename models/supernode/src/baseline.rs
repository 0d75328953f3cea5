//! The `kv_offload` baseline: activation and KV-cache offload as a serving runtime does it without
//! a compiler's view of the graph (FlexGen, DeepSpeed ZeRO-Inference and vLLM's CPU KV cache keep
//! the weights on the device and move the KV cache layer by layer).
//!
//! The rule is fixed, not planned under a budget: after an operator, every KV-cache or activation
//! tensor it touched that is not read again within the next `lookahead` operators (or, persistent,
//! not again in this graph) goes to the pool (written back when the device holds the only copy,
//! dropped when the pool has it), and it is fetched back `lookahead` operators before its next use. KV-cache and activation graph inputs
//! (a decode step's cache) start in the pool; weights and everything else stay resident.

use super::graph::{Graph, OpId, TensorId, TensorKind};
use super::lifetime::Lifetimes;
use super::planner::{Costs, Instr, Plan, dying_after, estimate_time_s};

/// Whether the runtime moves tensors of this kind.
fn movable(kind: TensorKind) -> bool {
    matches!(kind, TensorKind::KvCache | TensorKind::Activation)
}

/// The program of the baseline in the graph's own order; `planned_peak_bytes` is its device
/// peak in the same accounting as [`planner::replay`](super::planner::replay).
pub fn kv_offload(g: &Graph, costs: &Costs, lookahead: usize) -> Plan {
    let n = g.ops.len();
    let order: Vec<OpId> = (0..n).collect();
    let lt = Lifetimes::analyse(g, &order);
    let dying = dying_after(g, &lt, n);
    let initial: Vec<TensorId> = (0..g.tensors.len())
        .filter(|&t| lt.def[t].is_none() && !movable(g.tensors[t].kind))
        .collect();
    let mut resident = vec![false; g.tensors.len()];
    let mut dirty = vec![false; g.tensors.len()];
    // whether the pool holds the tensor's value (movable inputs start there)
    let mut in_pool: Vec<bool> = (0..g.tensors.len())
        .map(|t| lt.def[t].is_none() && movable(g.tensors[t].kind))
        .collect();
    let mut used = 0u64;
    for &t in &initial {
        resident[t] = true;
        used += g.tensors[t].bytes;
    }
    let mut peak = used;
    let mut program = Vec::with_capacity(3 * n);
    // operators whose inputs have been fetched: positions below `fetched`
    let mut fetched = 0;
    for i in 0..n {
        while fetched < n && fetched <= i + lookahead {
            let mut ts: Vec<TensorId> = g.ops[order[fetched]]
                .uses()
                .filter(|&t| !resident[t] && in_pool[t])
                .collect();
            ts.sort_unstable();
            ts.dedup();
            for t in ts {
                program.push(Instr::Prefetch(t));
                resident[t] = true;
                used += g.tensors[t].bytes;
            }
            fetched += 1;
        }
        let op = &g.ops[order[i]];
        program.push(Instr::Compute(order[i]));
        for &t in &op.outputs {
            resident[t] = true;
            used += g.tensors[t].bytes;
        }
        peak = peak.max(used);
        for &t in op.outputs.iter().chain(&op.updates) {
            dirty[t] = true;
        }
        for &t in &dying[i] {
            if resident[t] {
                program.push(Instr::Free(t));
                resident[t] = false;
                used -= g.tensors[t].bytes;
            }
        }
        let mut touched: Vec<TensorId> = op
            .uses()
            .chain(op.outputs.iter().copied())
            .filter(|&t| resident[t] && movable(g.tensors[t].kind))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for t in touched {
            // read again after the fetch horizon (release now, fetch back in time), or a cache
            // entry this graph no longer reads (kept for later tokens: to the pool)
            let release = match lt.next_use(t, i + 1) {
                Some(u) => u >= fetched,
                None => g.tensors[t].persistent,
            };
            if release {
                program.push(if dirty[t] {
                    Instr::Offload(t)
                } else {
                    Instr::Free(t)
                });
                resident[t] = false;
                dirty[t] = false;
                in_pool[t] = true;
                used -= g.tensors[t].bytes;
            }
        }
    }
    let estimated_time_s = estimate_time_s(g, &program, &initial, costs);
    Plan {
        order,
        initial,
        program,
        planned_peak_bytes: peak,
        estimated_time_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::random_graph;
    use crate::planner::replay;

    fn costs(times: &[f64]) -> Costs<'_> {
        Costs {
            op_time_s: times,
            bandwidth_bytes_per_s: 1e6,
            latency_s: 1e-6,
        }
    }

    #[test]
    fn the_baseline_program_is_valid_and_its_peak_is_what_a_replay_finds() {
        let mut rng = sim::rng::stream(23, "supernode/kv-offload");
        for case in 0..40 {
            let g = random_graph(&mut rng, 30);
            let times = vec![1e-3; g.ops.len()];
            let plan = kv_offload(&g, &costs(&times), 1 + case % 4);
            let r = replay(&g, &plan, u64::MAX).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(r.peak_bytes, plan.planned_peak_bytes, "case {case}");
        }
    }

    #[test]
    fn a_kv_cache_read_far_later_is_written_back_and_fetched_the_lookahead_ahead() {
        let mut g = Graph::default();
        let w = g.tensor("w", 100, TensorKind::Weight, true);
        let kv = g.tensor("kv", 1000, TensorKind::KvCache, true);
        g.op("write", 1.0, vec![w], vec![kv], vec![]);
        for k in 0..6 {
            g.op(format!("mid{k}"), 1.0, vec![w], vec![], vec![]);
        }
        g.op("read", 1.0, vec![w, kv], vec![], vec![]);
        let times = vec![1e-3; g.ops.len()];
        let plan = kv_offload(&g, &costs(&times), 2);
        let pos = |i: Instr| plan.program.iter().position(|&x| x == i).unwrap();
        assert_eq!(pos(Instr::Offload(kv)), pos(Instr::Compute(0)) + 1);
        // fetched two operators before its reader: before mid4, right after mid3 (id 4)
        assert_eq!(pos(Instr::Prefetch(kv)), pos(Instr::Compute(4)) + 1);
        assert_eq!(plan.initial, vec![w]);
        assert_eq!(plan.planned_peak_bytes, 1100);
    }
}
