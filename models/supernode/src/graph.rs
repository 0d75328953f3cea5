//! Computation graphs: operators that read, write and update tensors of known sizes.
//!
//! Tensors are single-assignment (at most one producing operator) except for in-place updates
//! (an optimizer step modifying weights). Graph inputs (no producer) start in memory; the listed
//! operator order is a valid execution order.

use serde::{Deserialize, Serialize};

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;
/// Index of an operator in [`Graph::ops`].
pub type OpId = usize;

/// What a tensor holds (decides nothing in the algorithms; used in reports and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TensorKind {
    /// Model parameters.
    Weight,
    /// Activations passed between operators, or saved for the backward pass.
    Activation,
    /// Attention key/value cache.
    KvCache,
    /// Weight gradients.
    Gradient,
    /// Optimizer state (fp32 master weights and Adam moments).
    OptimizerState,
    /// Output logits.
    Logits,
    /// An operator's intermediate (FFN gate/up output, attention Q/K/V), dead after the next op.
    Workspace,
}

/// A tensor: a named block of `bytes` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Name, e.g. `l3.w_attn`.
    pub name: String,
    /// Size, bytes.
    pub bytes: u64,
    /// What it holds.
    pub kind: TensorKind,
    /// Survives the graph (weights, KV cache, optimizer state): never freed as dead, only offloaded.
    pub persistent: bool,
}

/// An operator on the compute stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Name, e.g. `s0.l3.attn`.
    pub name: String,
    /// Floating-point operations.
    pub flops: f64,
    /// Tensors read.
    pub inputs: Vec<TensorId>,
    /// Tensors created.
    pub outputs: Vec<TensorId>,
    /// Tensors read and modified in place.
    pub updates: Vec<TensorId>,
}

impl Op {
    /// Whether the operator ends a token (the LM head, named `lm_head` or `s<step>.lm_head`).
    pub fn ends_token(&self) -> bool {
        self.name.ends_with("lm_head")
    }

    /// Every tensor that must be resident before the operator starts (inputs and updates).
    pub fn uses(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.inputs.iter().chain(&self.updates).copied()
    }
}

/// A computation graph in a valid execution order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// All tensors.
    pub tensors: Vec<Tensor>,
    /// All operators, in a valid (topological) order.
    pub ops: Vec<Op>,
}

impl Graph {
    /// Adds a tensor and returns its id.
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        bytes: u64,
        kind: TensorKind,
        persistent: bool,
    ) -> TensorId {
        self.tensors.push(Tensor {
            name: name.into(),
            bytes,
            kind,
            persistent,
        });
        self.tensors.len() - 1
    }

    /// Adds an operator and returns its id.
    pub fn op(
        &mut self,
        name: impl Into<String>,
        flops: f64,
        inputs: Vec<TensorId>,
        outputs: Vec<TensorId>,
        updates: Vec<TensorId>,
    ) -> OpId {
        self.ops.push(Op {
            name: name.into(),
            flops,
            inputs,
            outputs,
            updates,
        });
        self.ops.len() - 1
    }

    /// The operator producing each tensor (`None` for graph inputs).
    pub fn producers(&self) -> Vec<Option<OpId>> {
        let mut p = vec![None; self.tensors.len()];
        for (i, op) in self.ops.iter().enumerate() {
            for &t in &op.outputs {
                p[t] = Some(i);
            }
        }
        p
    }

    /// Bytes an operator moves through HBM: every tensor it reads, writes or updates (updates twice).
    pub fn op_hbm_bytes(&self, op: OpId) -> f64 {
        let o = &self.ops[op];
        let b = |ts: &[TensorId]| {
            ts.iter()
                .map(|&t| self.tensors[t].bytes as f64)
                .sum::<f64>()
        };
        b(&o.inputs) + b(&o.outputs) + 2.0 * b(&o.updates)
    }

    /// Predecessors of every operator: the producer of each tensor it uses, and for tensors updated
    /// in place the previous accesses (read-after-write and write-after-read order).
    pub fn predecessors(&self) -> Vec<Vec<OpId>> {
        let producers = self.producers();
        let mut last_update: Vec<Option<OpId>> = vec![None; self.tensors.len()];
        let mut readers_since: Vec<Vec<OpId>> = vec![Vec::new(); self.tensors.len()];
        let mut preds = vec![Vec::new(); self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let mut p: Vec<OpId> = Vec::new();
            for &t in &op.inputs {
                p.extend(producers[t]);
                p.extend(last_update[t]);
                readers_since[t].push(i);
            }
            for &t in &op.updates {
                p.extend(producers[t]);
                p.extend(last_update[t]);
                p.extend(readers_since[t].iter().copied().filter(|&r| r != i));
                readers_since[t].clear();
                last_update[t] = Some(i);
            }
            p.sort_unstable();
            p.dedup();
            preds[i] = p;
        }
        preds
    }

    /// Whether `order` is a permutation of all operators that respects [`Graph::predecessors`].
    pub fn is_valid_order(&self, order: &[OpId]) -> bool {
        if order.len() != self.ops.len() {
            return false;
        }
        let mut pos = vec![usize::MAX; self.ops.len()];
        for (k, &o) in order.iter().enumerate() {
            if o >= self.ops.len() || pos[o] != usize::MAX {
                return false;
            }
            pos[o] = k;
        }
        self.predecessors()
            .iter()
            .enumerate()
            .all(|(o, ps)| ps.iter().all(|&p| pos[p] < pos[o]))
    }

    /// Structural problems (a tensor produced twice, used before it is produced in the listed
    /// order, or an unknown id), as messages; empty when the graph is well formed.
    pub fn problems(&self) -> Vec<String> {
        let mut e = Vec::new();
        let mut produced = vec![false; self.tensors.len()];
        let producers = self.producers();
        for op in &self.ops {
            for t in op.uses().chain(op.outputs.iter().copied()) {
                if t >= self.tensors.len() {
                    e.push(format!("op {} uses unknown tensor {t}", op.name));
                    return e;
                }
            }
            for t in op.uses() {
                if producers[t].is_some() && !produced[t] {
                    e.push(format!(
                        "op {} uses {} before it is produced",
                        op.name, self.tensors[t].name
                    ));
                }
            }
            for &t in &op.outputs {
                if produced[t] {
                    e.push(format!("tensor {} is produced twice", self.tensors[t].name));
                }
                produced[t] = true;
            }
        }
        e
    }

    /// Bytes of the tensors that exist before the first operator (graph inputs).
    pub fn input_bytes(&self) -> u64 {
        self.producers()
            .iter()
            .zip(&self.tensors)
            .filter(|(p, _)| p.is_none())
            .map(|(_, t)| t.bytes)
            .sum()
    }

    /// Total FLOPs.
    pub fn flops(&self) -> f64 {
        self.ops.iter().map(|o| o.flops).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::Rng as _;
    use sim::rng::Rng;

    /// A random well-formed graph: `n` operators, each reading up to three earlier tensors
    /// (graph inputs or outputs of earlier operators) and producing one or two tensors; a few
    /// persistent inputs are updated in place.
    pub(crate) fn random_graph(rng: &mut Rng, n: usize) -> Graph {
        let mut g = Graph::default();
        let inputs: Vec<TensorId> = (0..4)
            .map(|k| {
                g.tensor(
                    format!("w{k}"),
                    rng.random_range(1..100),
                    TensorKind::Weight,
                    true,
                )
            })
            .collect();
        let mut avail = inputs.clone();
        for i in 0..n {
            let mut ins: Vec<TensorId> = (0..rng.random_range(1..=3))
                .map(|_| avail[rng.random_range(0..avail.len())])
                .collect();
            ins.sort_unstable();
            ins.dedup();
            let outs: Vec<TensorId> = (0..rng.random_range(1..=2))
                .map(|k| {
                    g.tensor(
                        format!("a{i}.{k}"),
                        rng.random_range(1..100),
                        TensorKind::Activation,
                        false,
                    )
                })
                .collect();
            let mut ups = Vec::new();
            if rng.random_bool(0.15) {
                let w = inputs[rng.random_range(0..inputs.len())];
                if !ins.contains(&w) {
                    ups.push(w);
                }
            }
            avail.extend(&outs);
            g.op(
                format!("op{i}"),
                rng.random_range(1.0..100.0),
                ins,
                outs,
                ups,
            );
        }
        g
    }

    #[test]
    fn listed_order_is_valid_and_a_swap_that_breaks_a_dependency_is_not() {
        let mut g = Graph::default();
        let w = g.tensor("w", 10, TensorKind::Weight, true);
        let a = g.tensor("a", 5, TensorKind::Activation, false);
        let b = g.tensor("b", 5, TensorKind::Activation, false);
        g.op("f", 1.0, vec![w], vec![a], vec![]);
        g.op("g", 1.0, vec![a], vec![b], vec![]);
        g.op("upd", 1.0, vec![b], vec![], vec![w]);
        assert!(g.problems().is_empty());
        assert!(g.is_valid_order(&[0, 1, 2]));
        assert!(!g.is_valid_order(&[1, 0, 2]));
        assert!(!g.is_valid_order(&[0, 0, 2]));
        // the update must follow the read of w by f (write after read)
        assert_eq!(g.predecessors()[2], vec![0, 1]);
        assert_eq!(g.input_bytes(), 10);
        assert_eq!(g.op_hbm_bytes(2), 5.0 + 20.0);
    }

    #[test]
    fn random_graphs_are_well_formed() {
        let mut rng = sim::rng::stream(3, "supernode/graph-test");
        for _ in 0..20 {
            let g = random_graph(&mut rng, 30);
            assert!(g.problems().is_empty());
            let order: Vec<OpId> = (0..g.ops.len()).collect();
            assert!(g.is_valid_order(&order));
        }
    }
}
