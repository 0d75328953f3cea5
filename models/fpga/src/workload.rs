//! A Transformer as a program of tasks: matmuls (with the weights they stream in) and nonlinear
//! operators, in execution order.

use super::ops::Op;
use super::params::{Activation, ModelShape, Norm};

/// What one task computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `batch` independent (m×k)·(k×n) products; `weights` = true when the right operand is a
    /// weight matrix streamed from off-chip memory.
    Matmul {
        /// Independent products (attention heads).
        batch: u64,
        /// Rows of the left operand (tokens).
        m: u64,
        /// Inner dimension.
        k: u64,
        /// Columns of the result.
        n: u64,
        /// Right operand is a weight matrix.
        weights: bool,
    },
    /// A nonlinear operator over `rows` rows of `len` elements.
    Nonlinear {
        /// Operator.
        op: Op,
        /// Rows.
        rows: u64,
        /// Elements per row.
        len: u64,
    },
}

/// One task of the program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Task {
    /// Layer index.
    pub layer: u32,
    /// What it computes.
    pub kind: Kind,
}

impl Task {
    /// Multiply-accumulates of a matmul (0 for nonlinear ops).
    pub fn macs(&self) -> u64 {
        match self.kind {
            Kind::Matmul { batch, m, k, n, .. } => batch * m * k * n,
            Kind::Nonlinear { .. } => 0,
        }
    }
    /// Weight bytes streamed at `bits` per weight (0 for activation-only tasks).
    pub fn weight_bytes(&self, bits: u32) -> u64 {
        match self.kind {
            Kind::Matmul {
                batch,
                k,
                n,
                weights: true,
                ..
            } => (batch * k * n * u64::from(bits)).div_ceil(8),
            _ => 0,
        }
    }
    /// Activation bytes read and written at `bits` per element.
    pub fn activation_bytes(&self, bits: u32) -> u64 {
        let elems = match self.kind {
            Kind::Matmul {
                batch,
                m,
                k,
                n,
                weights,
            } => batch * (m * k + m * n) + if weights { 0 } else { batch * k * n },
            Kind::Nonlinear { rows, len, .. } => 2 * rows * len,
        };
        (elems * u64::from(bits)).div_ceil(8)
    }
}

/// The nonlinear operators a model uses (what a separate design must provide units for).
pub fn nonlinear_ops(shape: &ModelShape) -> Vec<Op> {
    vec![
        Op::Softmax,
        match shape.activation {
            Activation::Gelu => Op::Gelu,
            Activation::Silu => Op::Silu,
        },
        match shape.norm {
            Norm::LayerNorm => Op::LayerNorm,
            Norm::RmsNorm => Op::RmsNorm,
        },
    ]
}

/// The program of a forward pass over `shape.seq` tokens (batch 1).
pub fn program(shape: &ModelShape) -> Vec<Task> {
    let (s, h, f) = (
        u64::from(shape.seq),
        u64::from(shape.hidden),
        u64::from(shape.ffn),
    );
    let heads = u64::from(shape.heads);
    let d = h / heads.max(1);
    let ops = nonlinear_ops(shape);
    let (softmax, act, norm) = (ops[0], ops[1], ops[2]);
    let mm = |batch, m, k, n, weights| Kind::Matmul {
        batch,
        m,
        k,
        n,
        weights,
    };
    let nl = |op, rows, len| Kind::Nonlinear { op, rows, len };
    let up = if shape.gated_ffn { 2 * f } else { f };
    let mut tasks = Vec::new();
    for layer in 0..shape.layers {
        for kind in [
            nl(norm, s, h),
            mm(1, s, h, 3 * h, true),
            mm(heads, s, d, s, false),
            nl(softmax, heads * s, s),
            mm(heads, s, s, d, false),
            mm(1, s, h, h, true),
            nl(norm, s, h),
            mm(1, s, h, up, true),
            nl(act, s, f),
            mm(1, s, f, h, true),
        ] {
            tasks.push(Task { layer, kind });
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_base_has_the_textbook_mac_count() {
        let shape = ModelShape {
            name: "bert-base".into(),
            layers: 12,
            hidden: 768,
            heads: 12,
            ffn: 3072,
            seq: 128,
            activation: Activation::Gelu,
            norm: Norm::LayerNorm,
            gated_ffn: false,
        };
        let macs: u64 = program(&shape).iter().map(Task::macs).sum();
        // Per layer: s·(4h² + 2hf) projections + 2·s²·h attention.
        let (s, h, f) = (128u64, 768u64, 3072u64);
        assert_eq!(macs, 12 * (s * (4 * h * h + 2 * h * f) + 2 * s * s * h));
        let wbytes: u64 = program(&shape).iter().map(|t| t.weight_bytes(8)).sum();
        assert_eq!(wbytes, 12 * (4 * h * h + 2 * h * f));
    }
}
