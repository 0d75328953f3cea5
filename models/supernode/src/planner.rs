//! The HyperOffload compile pass: lifetime analysis → cache operators (prefetch, offload, free)
//! inserted into the program → global execution-order refinement, all under a device-memory budget.
//!
//! The pass walks the execution order with its own memory accounting. Ahead of every operator it
//! issues a `Prefetch` for each input that is not resident, early enough that the transfer is
//! hidden: at least `prefetch_distance` operators before the use, and earlier still when the
//! estimated compute time in between is shorter than the transfer. Room is made by evicting the
//! resident tensors whose next use is farthest (Belady), clean copies first; dirty tensors are
//! written back (`Offload`), clean ones dropped (`Free`). Tensors needed by the operators already
//! prepared are never evicted. Non-persistent tensors are freed after their last use. When memory
//! is short a prefetch is deferred, never dropped; an operator whose own working set exceeds the
//! budget makes the plan fail. Order refinement is a memory-aware list schedule (among the ready
//! operators of a window, the one that frees most); the pass keeps the order whose plan is
//! estimated fastest.

use super::graph::{Graph, OpId, TensorId};
use super::lifetime::{Lifetimes, working_set};

/// One instruction of a device program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Instr {
    /// Allocate the tensor on the device and copy it in from the pool (asynchronous).
    Prefetch(TensorId),
    /// Write the tensor back to the pool, then free its device memory (asynchronous).
    Offload(TensorId),
    /// Free the tensor's device memory now (dead, or a clean copy of a pool tensor).
    Free(TensorId),
    /// Run the operator on the compute stream once its inputs are resident.
    Compute(OpId),
}

/// Knobs of the compile pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knobs {
    /// Minimum number of operators between a prefetch and the use it serves.
    pub prefetch_distance: usize,
    /// Try the memory-aware reordering and keep it when its plan is estimated faster.
    pub refine_order: bool,
    /// Operators of the original order the reordering may look ahead.
    pub reorder_window: usize,
    /// A resident tensor is an eviction candidate only when its next use is at least this many
    /// operators ahead (MindSpore's `select_distance`; 0 = any tensor not needed by the operators
    /// already prepared).
    pub select_distance: usize,
    /// At most this many distinct tensors may ever be offloaded: those with the longest idle
    /// stretch between uses (MindSpore's `select_num`, after its `OffloadInfoFilterByNumber`;
    /// 0 = no limit).
    pub select_num: usize,
    /// A resident tensor is released (offloaded or dropped) only when at least this many operators
    /// have run since its last use (our reading of MindSpore's `release_distance`; 0 = at once).
    pub release_distance: usize,
}

/// When a prefetch is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timing {
    /// At the latest point where the estimated compute before the use covers its own transfer.
    OwnTransfer,
    /// Also counting the transfers already queued on the pool → device stream, so a prefetch is
    /// issued early enough to finish behind them.
    InFlight,
}

/// Costs the pass uses to place prefetches: operator times and the fabric.
#[derive(Debug, Clone, Copy)]
pub struct Costs<'a> {
    /// Estimated compute time of every operator (by id), seconds.
    pub op_time_s: &'a [f64],
    /// Fabric bandwidth of one direction, bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Fabric latency, seconds.
    pub latency_s: f64,
}

impl Costs<'_> {
    fn transfer_s(&self, bytes: u64) -> f64 {
        self.latency_s + bytes as f64 / self.bandwidth_bytes_per_s
    }
}

/// The output of the pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Refined execution order.
    pub order: Vec<OpId>,
    /// Tensors resident on the device before the first instruction.
    pub initial: Vec<TensorId>,
    /// The program: compute operators in `order` with cache operators in between.
    pub program: Vec<Instr>,
    /// Peak device bytes in the pass's own accounting (≤ the budget).
    pub planned_peak_bytes: u64,
    /// Step time estimated with one compute stream and one transfer stream per direction, seconds.
    pub estimated_time_s: f64,
}

/// Why no plan exists under the budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "operator {op} needs {needed_bytes} bytes resident at once but the device budget is {budget_bytes} bytes"
)]
pub struct PlanError {
    /// The operator whose working set does not fit.
    pub op: String,
    /// Its working set, bytes.
    pub needed_bytes: u64,
    /// The budget, bytes.
    pub budget_bytes: u64,
}

/// Graph inputs resident at the start: in order of first use, as long as they fit in `budget`.
pub fn initial_residency(g: &Graph, lt: &Lifetimes, budget: u64) -> Vec<TensorId> {
    let mut inputs: Vec<TensorId> = (0..g.tensors.len())
        .filter(|&t| lt.def[t].is_none())
        .collect();
    inputs.sort_by_key(|&t| (lt.uses[t].first().copied().unwrap_or(usize::MAX), t));
    let mut used = 0u64;
    inputs
        .into_iter()
        .take_while(|&t| {
            used += g.tensors[t].bytes;
            used <= budget
        })
        .collect()
}

/// The program of a run without offloading: the operators in `order`, each non-persistent tensor
/// freed after its last use.
pub fn no_offload_program(g: &Graph, order: &[OpId]) -> Vec<Instr> {
    let lt = Lifetimes::analyse(g, order);
    let dying = dying_after(g, &lt, order.len());
    let mut prog = Vec::with_capacity(order.len() * 2);
    for (pos, &o) in order.iter().enumerate() {
        prog.push(Instr::Compute(o));
        prog.extend(dying[pos].iter().map(|&t| Instr::Free(t)));
    }
    prog
}

/// For each position of an order of `n` operators, the non-persistent tensors dead after it.
pub(crate) fn dying_after(g: &Graph, lt: &Lifetimes, n: usize) -> Vec<Vec<TensorId>> {
    let mut dying = vec![Vec::new(); n];
    for t in 0..g.tensors.len() {
        if !g.tensors[t].persistent
            && let Some(d) = lt.death(t)
        {
            dying[d].push(t);
        }
    }
    dying
}

/// Memory-aware reordering: a list schedule that, among the ready operators whose original index
/// is within `window` of the earliest unscheduled one, runs the one with the smallest net memory
/// change (bytes it creates minus non-persistent bytes it is the last user of), ties in original
/// order.
pub fn refine_order(g: &Graph, window: usize) -> Vec<OpId> {
    let n = g.ops.len();
    let preds = g.predecessors();
    let mut succs = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for (o, ps) in preds.iter().enumerate() {
        indeg[o] = ps.len();
        for &p in ps {
            succs[p].push(o);
        }
    }
    let mut remaining = vec![0usize; g.tensors.len()];
    for op in &g.ops {
        let mut ts: Vec<TensorId> = op.uses().collect();
        ts.sort_unstable();
        ts.dedup();
        for t in ts {
            remaining[t] += 1;
        }
    }
    let mut ready: std::collections::BTreeSet<OpId> = (0..n).filter(|&o| indeg[o] == 0).collect();
    let mut done = vec![false; n];
    let mut front = 0;
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let delta = |o: OpId| -> i128 {
            let op = &g.ops[o];
            let made: u64 = op.outputs.iter().map(|&t| g.tensors[t].bytes).sum();
            let mut ts: Vec<TensorId> = op.uses().collect();
            ts.sort_unstable();
            ts.dedup();
            let freed: u64 = ts
                .iter()
                .filter(|&&t| !g.tensors[t].persistent && remaining[t] == 1)
                .map(|&t| g.tensors[t].bytes)
                .sum();
            i128::from(made) - i128::from(freed)
        };
        let pick = ready
            .range(..front + window.max(1))
            .copied()
            .min_by_key(|&o| (delta(o), o))
            .expect("the earliest unscheduled operator is always ready");
        ready.remove(&pick);
        done[pick] = true;
        order.push(pick);
        let mut ts: Vec<TensorId> = g.ops[pick].uses().collect();
        ts.sort_unstable();
        ts.dedup();
        for t in ts {
            remaining[t] -= 1;
        }
        for &s in &succs[pick] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.insert(s);
            }
        }
        while front < n && done[front] {
            front += 1;
        }
    }
    order
}

/// Runs the pass: plans the original order and, if enabled, the refined one, each with prefetches
/// timed by their own transfer and by the in-flight backlog, and keeps the plan estimated fastest
/// (then the lower planned peak).
pub fn plan(g: &Graph, costs: &Costs, budget: u64, knobs: &Knobs) -> Result<Plan, PlanError> {
    let base: Vec<OpId> = (0..g.ops.len()).collect();
    let mut best = plan_order(g, base.clone(), costs, budget, knobs, Timing::OwnTransfer)?;
    let mut orders = vec![base.clone()];
    if knobs.refine_order {
        let refined = refine_order(g, knobs.reorder_window);
        if refined != base {
            orders.push(refined);
        }
    }
    for (k, order) in orders.into_iter().enumerate() {
        for timing in [Timing::OwnTransfer, Timing::InFlight] {
            if k == 0 && timing == Timing::OwnTransfer {
                continue;
            }
            if let Ok(p) = plan_order(g, order.clone(), costs, budget, knobs, timing)
                && (p.estimated_time_s, p.planned_peak_bytes)
                    < (best.estimated_time_s, best.planned_peak_bytes)
            {
                best = p;
            }
        }
    }
    Ok(best)
}

/// The pass's memory accounting while it walks the order.
struct Walk<'a> {
    g: &'a Graph,
    lt: Lifetimes,
    budget: u64,
    select_distance: usize,
    release_distance: usize,
    /// Tensors the `select_num` filter lets the pass offload.
    selectable: Vec<bool>,
    resident: Vec<bool>,
    dirty: Vec<bool>,
    used: u64,
    peak: u64,
    program: Vec<Instr>,
}

impl Walk<'_> {
    /// Evicts farthest-next-use tensors not needed by positions `from..=to` until `bytes` more fit;
    /// changes nothing and returns false when that is impossible.
    fn make_room(&mut self, bytes: u64, from: usize, to: usize) -> bool {
        if self.used + bytes <= self.budget {
            return true;
        }
        let horizon = to.max(from.saturating_add(self.select_distance.saturating_sub(1)));
        let mut cands: Vec<(usize, bool, u64, TensorId)> = (0..self.g.tensors.len())
            .filter(|&t| self.resident[t] && self.selectable[t])
            .filter(|&t| self.lt.def[t].is_none_or(|d| d < from))
            .filter(|&t| {
                self.lt
                    .prev_use(t, from)
                    .or(self.lt.def[t])
                    .is_none_or(|p| from - p >= self.release_distance)
            })
            .filter_map(|t| {
                let next = self.lt.next_use(t, from).unwrap_or(usize::MAX);
                (next > horizon).then_some((next, self.dirty[t], self.g.tensors[t].bytes, t))
            })
            .collect();
        let evictable: u64 = cands.iter().map(|c| c.2).sum();
        if self.used - evictable + bytes > self.budget {
            return false;
        }
        // farthest next use first, clean before dirty, larger first
        cands.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(a.1.cmp(&b.1))
                .then(b.2.cmp(&a.2))
                .then(a.3.cmp(&b.3))
        });
        for (_, dirty, size, t) in cands {
            if self.used + bytes <= self.budget {
                break;
            }
            self.program.push(if dirty {
                Instr::Offload(t)
            } else {
                Instr::Free(t)
            });
            self.resident[t] = false;
            self.dirty[t] = false;
            self.used -= size;
        }
        true
    }

    /// Makes operator `o` at position `j` ready (inputs prefetched, outputs reserved) while
    /// protecting positions `from..=j`; false when memory is short.
    fn prepare(&mut self, o: OpId, j: usize, from: usize) -> bool {
        let op = &self.g.ops[o];
        let mut missing: Vec<TensorId> = op.uses().filter(|&t| !self.resident[t]).collect();
        missing.sort_unstable();
        missing.dedup();
        let bytes: u64 = missing
            .iter()
            .chain(&op.outputs)
            .map(|&t| self.g.tensors[t].bytes)
            .sum();
        if !self.make_room(bytes, from, j) {
            return false;
        }
        for &t in &missing {
            self.program.push(Instr::Prefetch(t));
            self.resident[t] = true;
        }
        for &t in &op.outputs {
            self.resident[t] = true; // reserved until produced
        }
        self.used += bytes;
        self.peak = self.peak.max(self.used);
        true
    }

    fn missing_bytes(&self, o: OpId) -> u64 {
        let mut ts: Vec<TensorId> = self.g.ops[o]
            .uses()
            .filter(|&t| !self.resident[t])
            .collect();
        ts.sort_unstable();
        ts.dedup();
        ts.iter().map(|&t| self.g.tensors[t].bytes).sum()
    }
}

/// The tensors the pass may offload: with `select_num` = 0 all of them; otherwise the
/// `select_num` tensors with the longest idle stretch (operators from the definition, or the
/// start for a graph input, to the first use, between two uses, or for a persistent tensor from
/// its last use to the end), counting only stretches of at least `select_distance` operators;
/// ties go to the larger tensor.
fn selectable(g: &Graph, lt: &Lifetimes, n_ops: usize, knobs: &Knobs) -> Vec<bool> {
    let count = g.tensors.len();
    if knobs.select_num == 0 {
        return vec![true; count];
    }
    let mut ranked: Vec<(usize, u64, TensorId)> = (0..count)
        .filter_map(|t| {
            let uses = &lt.uses[t];
            let first = *uses.first()?;
            let mut gap = first - lt.def[t].unwrap_or(0);
            gap = gap.max(uses.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0));
            if g.tensors[t].persistent {
                gap = gap.max(n_ops - uses[uses.len() - 1]);
            }
            (gap >= knobs.select_distance.max(1)).then_some((gap, g.tensors[t].bytes, t))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut keep = vec![false; count];
    for &(_, _, t) in ranked.iter().take(knobs.select_num) {
        keep[t] = true;
    }
    keep
}

fn plan_order(
    g: &Graph,
    order: Vec<OpId>,
    costs: &Costs,
    budget: u64,
    knobs: &Knobs,
    timing: Timing,
) -> Result<Plan, PlanError> {
    let n = order.len();
    for &o in &order {
        let need = working_set(g, o);
        if need > budget {
            return Err(PlanError {
                op: g.ops[o].name.clone(),
                needed_bytes: need,
                budget_bytes: budget,
            });
        }
    }
    let lt = Lifetimes::analyse(g, &order);
    let initial = initial_residency(g, &lt, budget);
    let dying = dying_after(g, &lt, n);
    let mut pre = vec![0.0; n + 1];
    for k in 0..n {
        pre[k + 1] = pre[k] + costs.op_time_s[order[k]];
    }
    let horizon_s = costs.transfer_s(budget);
    let selectable = selectable(g, &lt, n, knobs);
    let mut w = Walk {
        g,
        lt,
        budget,
        select_distance: knobs.select_distance,
        release_distance: knobs.release_distance,
        selectable,
        resident: vec![false; g.tensors.len()],
        dirty: vec![false; g.tensors.len()],
        used: 0,
        peak: 0,
        program: Vec::with_capacity(3 * n),
    };
    for &t in &initial {
        w.resident[t] = true;
        w.used += g.tensors[t].bytes;
    }
    w.peak = w.used;
    let mut next = 0;
    // estimated time the pool → device stream finishes the prefetches issued so far
    let mut h2d_free_s = 0.0f64;
    for i in 0..n {
        // queued transfer time ahead of a prefetch issued now (zero when timing by own transfer)
        let backlog_s = match timing {
            Timing::OwnTransfer => 0.0,
            Timing::InFlight => (h2d_free_s - pre[i]).max(0.0),
        };
        // the farthest operator whose prefetch is due now: the estimated compute before it no
        // longer covers its transfer behind the backlog (or it is within the prefetch distance)
        let mut due = i;
        let mut k = next.max(i);
        while k < n
            && (k - i <= knobs.prefetch_distance || pre[k] - pre[i] <= horizon_s + backlog_s)
        {
            if k - i <= knobs.prefetch_distance
                || pre[k] - pre[i] <= backlog_s + costs.transfer_s(w.missing_bytes(order[k]))
            {
                due = k;
            }
            k += 1;
        }
        while next <= due {
            let issued = w.program.len();
            if !w.prepare(order[next], next, i) {
                if next == i {
                    let o = order[i];
                    return Err(PlanError {
                        op: g.ops[o].name.clone(),
                        needed_bytes: working_set(g, o),
                        budget_bytes: budget,
                    });
                }
                break;
            }
            let fetched: u64 = w.program[issued..]
                .iter()
                .filter_map(|ins| match *ins {
                    Instr::Prefetch(t) => Some(g.tensors[t].bytes),
                    _ => None,
                })
                .sum();
            if fetched > 0 {
                h2d_free_s = h2d_free_s.max(pre[i]) + fetched as f64 / costs.bandwidth_bytes_per_s;
            }
            next += 1;
        }
        let o = order[i];
        w.program.push(Instr::Compute(o));
        for &t in g.ops[o].outputs.iter().chain(&g.ops[o].updates) {
            w.dirty[t] = true;
        }
        for &t in &dying[i] {
            if w.resident[t] {
                w.program.push(Instr::Free(t));
                w.resident[t] = false;
                w.used -= g.tensors[t].bytes;
            }
        }
    }
    let estimated_time_s = estimate_time_s(g, &w.program, &initial, costs);
    Ok(Plan {
        order,
        initial,
        program: w.program,
        planned_peak_bytes: w.peak,
        estimated_time_s,
    })
}

/// Time of `program` with one in-order compute stream and one FIFO transfer stream per direction,
/// ignoring memory waits, seconds.
pub fn estimate_time_s(g: &Graph, program: &[Instr], initial: &[TensorId], costs: &Costs) -> f64 {
    estimate_op_ends_s(g, program, initial, costs)
        .into_iter()
        .fold(0.0, f64::max)
}

/// End time of every operator (by id) under the model of [`estimate_time_s`], seconds (0 for an
/// operator the program never computes).
pub fn estimate_op_ends_s(
    g: &Graph,
    program: &[Instr],
    initial: &[TensorId],
    costs: &Costs,
) -> Vec<f64> {
    let mut ready = vec![f64::INFINITY; g.tensors.len()];
    for &t in initial {
        ready[t] = 0.0;
    }
    let mut ends = vec![0.0; g.ops.len()];
    let (mut compute, mut h2d, mut d2h) = (0.0f64, 0.0f64, 0.0f64);
    for ins in program {
        match *ins {
            Instr::Prefetch(t) => {
                h2d = h2d.max(compute) + g.tensors[t].bytes as f64 / costs.bandwidth_bytes_per_s;
                ready[t] = h2d + costs.latency_s;
            }
            Instr::Offload(t) => {
                d2h = d2h.max(compute) + g.tensors[t].bytes as f64 / costs.bandwidth_bytes_per_s;
                ready[t] = f64::INFINITY;
            }
            Instr::Free(t) => ready[t] = f64::INFINITY,
            Instr::Compute(o) => {
                let start = g.ops[o].uses().map(|t| ready[t]).fold(compute, f64::max);
                // a use that is not resident is fetched on demand (only reached by a bad plan)
                let start = if start.is_finite() { start } else { compute };
                compute = start + costs.op_time_s[o];
                ends[o] = compute;
                for &t in &g.ops[o].outputs {
                    ready[t] = compute;
                }
            }
        }
    }
    ends
}

/// What a symbolic replay of a program found.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Highest device bytes (outputs counted from their operator's start).
    pub peak_bytes: u64,
    /// Smallest number of compute instructions between a prefetch and its tensor's next use.
    pub min_prefetch_distance: usize,
}

/// Replays `program` symbolically and checks it: every operator's inputs resident when it runs,
/// cache operators only on tensors in the right state (a prefetch only of a value the pool holds), the order a valid topological order, and
/// device bytes never above `budget`. Returns the first violation as a message.
pub fn replay(g: &Graph, plan: &Plan, budget: u64) -> Result<Replay, String> {
    if !g.is_valid_order(&plan.order) {
        return Err("order violates a dependency".into());
    }
    let mut resident = vec![false; g.tensors.len()];
    let mut used = 0u64;
    for &t in &plan.initial {
        resident[t] = true;
        used += g.tensors[t].bytes;
    }
    let mut peak = used;
    // whether the pool holds the tensor's current value: graph inputs do; an operator's output or
    // in-place update does only once written back
    let mut pooled: Vec<bool> = g.producers().iter().map(Option::is_none).collect();
    let mut pending: Vec<(TensorId, usize)> = Vec::new();
    let mut min_dist = usize::MAX;
    let mut computed = 0usize;
    let mut order = Vec::new();
    let name = |t: TensorId| g.tensors[t].name.clone();
    for ins in &plan.program {
        match *ins {
            Instr::Prefetch(t) => {
                if resident[t] {
                    return Err(format!("prefetch of resident {}", name(t)));
                }
                if !pooled[t] {
                    return Err(format!(
                        "prefetch of {} whose value is not in the pool",
                        name(t)
                    ));
                }
                resident[t] = true;
                used += g.tensors[t].bytes;
                pending.push((t, computed));
            }
            Instr::Offload(t) | Instr::Free(t) => {
                if !resident[t] {
                    return Err(format!("eviction of absent {}", name(t)));
                }
                if matches!(ins, Instr::Offload(_)) {
                    pooled[t] = true;
                }
                resident[t] = false;
                used -= g.tensors[t].bytes;
            }
            Instr::Compute(o) => {
                order.push(o);
                for t in g.ops[o].uses() {
                    if !resident[t] {
                        return Err(format!("{} runs without {}", g.ops[o].name, name(t)));
                    }
                }
                pending.retain(|&(t, at)| {
                    if g.ops[o].uses().any(|u| u == t) {
                        min_dist = min_dist.min(computed - at);
                        false
                    } else {
                        true
                    }
                });
                for &t in &g.ops[o].outputs {
                    resident[t] = true;
                    used += g.tensors[t].bytes;
                }
                for &t in g.ops[o].outputs.iter().chain(&g.ops[o].updates) {
                    pooled[t] = false;
                }
                computed += 1;
            }
        }
        peak = peak.max(used);
        if used > budget {
            return Err(format!(
                "{used} bytes resident above the budget of {budget}"
            ));
        }
    }
    if order != plan.order {
        return Err("program computes in a different order than the plan".into());
    }
    Ok(Replay {
        peak_bytes: peak,
        min_prefetch_distance: min_dist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::random_graph;
    use crate::lifetime::no_offload_peak;

    fn costs(g: &Graph, bw: f64) -> (Vec<f64>, f64) {
        (g.ops.iter().map(|o| o.flops * 1e-6).collect(), bw)
    }

    fn knobs(d: usize, refine: bool) -> Knobs {
        Knobs {
            prefetch_distance: d,
            refine_order: refine,
            reorder_window: 8,
            select_distance: 0,
            select_num: 0,
            release_distance: 0,
        }
    }

    #[test]
    fn plans_respect_the_budget_dependencies_and_residency_on_random_graphs() {
        let mut rng = sim::rng::stream(17, "supernode/planner-test");
        let mut tight = 0;
        for case in 0..60 {
            let g = random_graph(&mut rng, 40);
            let (times, bw) = costs(&g, 1e6);
            let c = Costs {
                op_time_s: &times,
                bandwidth_bytes_per_s: bw,
                latency_s: 1e-6,
            };
            let order: Vec<OpId> = (0..g.ops.len()).collect();
            let full = no_offload_peak(&g, &order);
            let floor = (0..g.ops.len()).map(|o| working_set(&g, o)).max().unwrap();
            for frac in [1.0, 0.8, 0.6, 0.4] {
                let budget = ((full as f64 * frac) as u64).max(floor);
                let plan = plan(&g, &c, budget, &knobs(1 + case % 3, case % 2 == 0))
                    .expect("budget ≥ every working set");
                let r = replay(&g, &plan, budget)
                    .unwrap_or_else(|e| panic!("case {case} frac {frac}: {e}"));
                assert!(plan.planned_peak_bytes <= budget);
                assert!(r.peak_bytes <= plan.planned_peak_bytes);
                if budget < full {
                    tight += 1;
                }
            }
        }
        assert!(tight > 100, "the test must exercise tight budgets");
    }

    #[test]
    fn prefetches_are_issued_at_least_the_distance_ahead_when_memory_allows() {
        let mut rng = sim::rng::stream(5, "supernode/planner-distance");
        for d in [1, 2, 4] {
            let mut g = random_graph(&mut rng, 30);
            // a separate input tensor per operator, first used late enough to honour the distance
            for o in d..g.ops.len() {
                let t = g.tensor(format!("in{o}"), 10, crate::graph::TensorKind::Weight, true);
                g.ops[o].inputs.push(t);
            }
            let (times, bw) = costs(&g, 1e9);
            let c = Costs {
                op_time_s: &times,
                bandwidth_bytes_per_s: bw,
                latency_s: 0.0,
            };
            let order: Vec<OpId> = (0..g.ops.len()).collect();
            let full = no_offload_peak(&g, &order);
            // enough room for everything but the late inputs: they must be prefetched
            let late: u64 = 10 * (g.ops.len() - d) as u64;
            let budget = full - late / 2;
            let plan = plan(&g, &c, budget, &knobs(d, false)).unwrap();
            let r = replay(&g, &plan, budget).unwrap();
            assert!(plan.program.iter().any(|i| matches!(i, Instr::Prefetch(_))));
            assert!(
                r.min_prefetch_distance >= d,
                "d={d}: {}",
                r.min_prefetch_distance
            );
        }
    }

    /// Distinct tensors a program evicts while they are still read later, and for each eviction the
    /// operators run since the tensor's previous use.
    fn evictions(g: &Graph, p: &Plan) -> (std::collections::BTreeSet<TensorId>, Vec<usize>) {
        let lt = Lifetimes::analyse(g, &p.order);
        let (mut set, mut gaps, mut pos) = (std::collections::BTreeSet::new(), Vec::new(), 0);
        for ins in &p.program {
            match *ins {
                Instr::Compute(_) => pos += 1,
                Instr::Offload(t) | Instr::Free(t) if lt.next_use(t, pos).is_some() => {
                    set.insert(t);
                    let last = lt
                        .prev_use(t, pos)
                        .or(lt.def[t])
                        .map_or(pos, |p| pos - 1 - p);
                    gaps.push(last);
                }
                _ => {}
            }
        }
        (set, gaps)
    }

    #[test]
    fn select_num_caps_the_offloaded_tensors_and_release_distance_delays_releases() {
        let mut rng = sim::rng::stream(31, "supernode/select-release");
        let (mut capped, mut delayed) = (0, 0);
        for case in 0..40 {
            let g = random_graph(&mut rng, 40);
            let (times, bw) = costs(&g, 1e6);
            let c = Costs {
                op_time_s: &times,
                bandwidth_bytes_per_s: bw,
                latency_s: 1e-6,
            };
            let order: Vec<OpId> = (0..g.ops.len()).collect();
            let full = no_offload_peak(&g, &order);
            let floor = (0..g.ops.len()).map(|o| working_set(&g, o)).max().unwrap();
            let budget = ((full as f64 * 0.8) as u64).max(floor);
            let free = plan(&g, &c, budget, &knobs(1, false)).unwrap();
            let (all, _) = evictions(&g, &free);
            // fewer selectable tensors than the unconstrained plan evicts
            for num in [all.len() / 2, all.len().saturating_sub(1)] {
                let k = Knobs {
                    select_num: num.max(1),
                    ..knobs(1, false)
                };
                if let Ok(p) = plan(&g, &c, budget, &k) {
                    replay(&g, &p, budget).unwrap();
                    let (set, _) = evictions(&g, &p);
                    assert!(
                        set.len() <= num.max(1),
                        "case {case}: {} > {num}",
                        set.len()
                    );
                    capped += usize::from(all.len() > num.max(1));
                }
            }
            for d in [2, 5] {
                let k = Knobs {
                    release_distance: d,
                    ..knobs(1, false)
                };
                if let Ok(p) = plan(&g, &c, budget, &k) {
                    replay(&g, &p, budget).unwrap();
                    let (_, gaps) = evictions(&g, &p);
                    // operators run since the previous use, counting the one being prepared for
                    assert!(
                        gaps.iter().all(|&gap| gap + 1 >= d),
                        "case {case}: {gaps:?}"
                    );
                    delayed += usize::from(!gaps.is_empty());
                }
            }
        }
        assert!(capped > 10 && delayed > 10, "{capped} {delayed}");
    }

    #[test]
    fn an_operator_larger_than_the_budget_is_a_clear_error() {
        let mut g = Graph::default();
        let w = g.tensor("w", 100, crate::graph::TensorKind::Weight, true);
        let a = g.tensor("a", 50, crate::graph::TensorKind::Activation, false);
        g.op("big", 1.0, vec![w], vec![a], vec![]);
        let c = Costs {
            op_time_s: &[1.0],
            bandwidth_bytes_per_s: 1.0,
            latency_s: 0.0,
        };
        let e = plan(&g, &c, 120, &knobs(1, true)).unwrap_err();
        assert_eq!(
            e,
            PlanError {
                op: "big".into(),
                needed_bytes: 150,
                budget_bytes: 120
            }
        );
        assert!(e.to_string().contains("operator big needs 150 bytes"));
    }

    #[test]
    fn refined_orders_are_topological_and_lower_or_keep_the_peak_on_training_like_graphs() {
        let mut rng = sim::rng::stream(2, "supernode/refine");
        for _ in 0..30 {
            let g = random_graph(&mut rng, 30);
            for w in [1, 4, 16] {
                let order = refine_order(&g, w);
                assert!(g.is_valid_order(&order));
            }
            let ident: Vec<OpId> = (0..g.ops.len()).collect();
            assert_eq!(
                refine_order(&g, 1),
                ident,
                "a window of one keeps the original order"
            );
        }
        // backward with weight gradients listed last: the refinement runs each dW early and frees
        // the saved activations sooner
        let mut g = Graph::default();
        use crate::graph::TensorKind::*;
        let n = 4;
        let saved: Vec<_> = (0..n)
            .map(|l| g.tensor(format!("s{l}"), 100, Activation, false))
            .collect();
        let mut dx = g.tensor("dx", 100, Activation, false);
        g.op("loss", 1.0, vec![], vec![dx], vec![]);
        let mut dxs = vec![dx];
        for l in (0..n).rev() {
            let next = g.tensor(format!("dx{l}"), 100, Activation, false);
            g.op(
                format!("bx{l}"),
                1.0,
                vec![dx, saved[l]],
                vec![next],
                vec![],
            );
            dxs.push(next);
            dx = next;
        }
        for l in (0..n).rev() {
            let gr = g.tensor(format!("g{l}"), 10, Gradient, true);
            g.op(
                format!("bw{l}"),
                1.0,
                vec![dxs[n - 1 - l], saved[l]],
                vec![gr],
                vec![],
            );
        }
        let ident: Vec<OpId> = (0..g.ops.len()).collect();
        let refined = refine_order(&g, 16);
        assert!(g.is_valid_order(&refined));
        assert!(no_offload_peak(&g, &refined) < no_offload_peak(&g, &ident));
    }

    #[test]
    fn with_unbounded_bandwidth_the_estimate_equals_the_compute_time() {
        let mut rng = sim::rng::stream(8, "supernode/estimate");
        let g = random_graph(&mut rng, 30);
        let (times, _) = costs(&g, 0.0);
        let c = Costs {
            op_time_s: &times,
            bandwidth_bytes_per_s: f64::INFINITY,
            latency_s: 0.0,
        };
        let order: Vec<OpId> = (0..g.ops.len()).collect();
        let budget = no_offload_peak(&g, &order) * 6 / 10;
        let floor = (0..g.ops.len()).map(|o| working_set(&g, o)).max().unwrap();
        let p = plan(&g, &c, budget.max(floor), &knobs(2, true)).unwrap();
        let total: f64 = times.iter().sum();
        assert!((p.estimated_time_s - total).abs() < 1e-9 * total.max(1.0));
    }
}
