//! The numeric check inside each run: Samoyeds' sparse×sparse kernel runs on a sampled block of
//! the run's real tiles — one 128-row weight vector and up to 64 of the tokens this run's router
//! sent to one expert, read in place through the activation format's indices — and its result is
//! compared with the dense product of the same sparsified weights. The block's kept K positions
//! also give the shared-memory bank-conflict degree that the timing of V:N:M-style kernels uses.
//!
//! Values are synthetic and stated: hidden states and weights are i.i.d. N(0, 1) (the family's
//! router works on synthetic hidden states too); magnitude selection on such weights keeps
//! uniformly random positions, which is what the conflict degree depends on.

use rand_distr::{Distribution, StandardNormal};
use sim::rng::Rng;

use super::efficiency::gather_conflict_degree;
use super::format::{Matrix, SamoyedsWeight, SparseActivation};
use super::kernel::samoyeds_gemm;
use super::tiling::{M, N, SparsityFormat};

/// Rows of the sampled weight block (one Samoyeds vector, one row tile).
pub const ROWS: usize = 128;
/// Reduction width of the sampled block, at most.
pub const MAX_K: usize = 256;
/// Tokens of the sampled block, at most (one 64-token tile).
pub const MAX_TOKENS: usize = 64;
/// Token indices the sampled hidden states cover (tokens routed beyond are not sampled).
pub const TOKEN_SPACE: usize = 1024;

/// Outcome of one sampled block.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleCheck {
    /// Largest |sparse kernel − dense reference| over the block's outputs.
    pub max_abs_err: f64,
    /// Mean bank-conflict degree of the block's gathered token-fragment loads.
    pub conflict_degree: f64,
    /// Routed tokens in the block.
    pub tokens: usize,
}

fn normal_matrix(rows: usize, cols: usize, rng: &mut Rng) -> Matrix {
    Matrix::from_fn(rows, cols, |_, _| {
        let z: f64 = StandardNormal.sample(rng);
        z as f32
    })
}

/// Runs Samoyeds' kernel on a `ROWS × k` weight block (k = `hidden` capped at [`MAX_K`]) and the
/// first [`MAX_TOKENS`] of `routed` (token indices below [`TOKEN_SPACE`]), checked against dense.
pub fn check_block(
    routed: &[u32],
    hidden: usize,
    fmt: &SparsityFormat,
    rng: &mut Rng,
) -> SampleCheck {
    let k = hidden.clamp(1, MAX_K);
    let tokens: Vec<u32> = routed
        .iter()
        .copied()
        .filter(|&t| (t as usize) < TOKEN_SPACE)
        .take(MAX_TOKENS)
        .collect();
    let space = tokens.last().map_or(1, |&t| t as usize + 1);
    let states = normal_matrix(space, k, rng);
    let dense_w = normal_matrix(ROWS, k, rng);
    let w = SamoyedsWeight::compress(&dense_w, fmt.vector.min(ROWS), fmt.row_group, N, M);
    let act = SparseActivation::select(&states, &tokens, fmt.token_pad);
    let run = samoyeds_gemm(std::slice::from_ref(&w), std::slice::from_ref(&act), fmt);
    let reference = w.to_dense();
    let mut max_abs_err = 0.0f64;
    for (j, &t) in tokens.iter().enumerate() {
        for r in 0..ROWS {
            let exact: f32 = (0..k)
                .map(|c| reference.at(r, c) * states.at(t as usize, c))
                .sum();
            max_abs_err = max_abs_err.max(f64::from((run.out[0].at(r, j) - exact).abs()));
        }
    }
    let conflict_degree = w
        .selected
        .iter()
        .map(|s| gather_conflict_degree(s))
        .sum::<f64>()
        / w.selected.len().max(1) as f64;
    SampleCheck {
        max_abs_err,
        conflict_degree,
        tokens: tokens.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_block_matches_dense_and_one_of_two_selection_conflicts() {
        let mut rng = sim::rng::stream(9, "s");
        let routed: Vec<u32> = (0..300).step_by(3).collect();
        let c = check_block(&routed, 4096, &SparsityFormat::default(), &mut rng);
        assert_eq!(c.tokens, 64);
        assert!(c.max_abs_err < 1e-3, "{}", c.max_abs_err);
        // Random 1-of-2 selection: rows i and i+4 of a phase collide with probability 1/2 each,
        // so a phase is 2-way conflicted unless all four pairs differ (1/16).
        assert!(
            c.conflict_degree > 1.8 && c.conflict_degree < 2.0,
            "{}",
            c.conflict_degree
        );
        let plain = SparsityFormat {
            row_group: 1,
            ..SparsityFormat::default()
        };
        assert_eq!(
            check_block(&routed, 64, &plain, &mut rng).conflict_degree,
            1.0
        );
        assert_eq!(check_block(&[], 64, &plain, &mut rng).tokens, 0);
    }
}
