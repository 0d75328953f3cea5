//! The numeric kernels: each executes its launch tile by tile (the tiles of `tiling.rs`), K step by
//! K step, in f32, and returns the product together with the counts of the tiles it ran. Used on
//! small shapes in tests to show that every format computes the dense product of the same
//! (sparsified) matrices and that the counts the simulator times are those a kernel issues.

use super::format::{Matrix, NmMatrix, SamoyedsWeight, SparseActivation};
use super::tiling::{KernelStats, Method, SparsityFormat, gemm_plan};

/// Result of a numeric kernel: one output per group (`rows × routed tokens`) and the counts.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelRun {
    /// Output of each group, `m × n_g` (token columns in routing order).
    pub out: Vec<Matrix>,
    /// Tiles, MMA instructions, bytes and FLOPs of the tiles executed.
    pub stats: KernelStats,
}

/// Runs the tiles of `plan` with `dot(group, row, col, k_lo, k_hi)` giving the partial dot product
/// of one output over a K step; K steps of `kstep` logical positions, accumulated in f32.
fn run_tiles(
    method: Method,
    fmt: &SparsityFormat,
    m: usize,
    k: usize,
    cols: &[usize],
    kstep: usize,
    dot: impl Fn(usize, usize, usize, usize, usize) -> f32,
) -> KernelRun {
    let plan = gemm_plan("numeric", method, fmt, m, k, cols);
    let (bm, bn) = method.tile();
    let mut out: Vec<Matrix> = cols.iter().map(|&n| Matrix::zeros(m, n)).collect();
    let mut stats = KernelStats::default();
    for t in &plan.tiles {
        let g = t.group as usize;
        let rows = t.row_block as usize * bm..((t.row_block as usize + 1) * bm).min(m);
        let tcols = t.col_block as usize * bn..((t.col_block as usize + 1) * bn).min(cols[g]);
        let mut acc = vec![0.0f32; rows.len() * tcols.len()];
        let mut k_lo = 0;
        while k_lo < k {
            let k_hi = (k_lo + kstep).min(k);
            for (i, r) in rows.clone().enumerate() {
                for (j, c) in tcols.clone().enumerate() {
                    acc[i * tcols.len() + j] += dot(g, r, c, k_lo, k_hi);
                }
            }
            k_lo = k_hi;
        }
        for (i, r) in rows.clone().enumerate() {
            for (j, c) in tcols.clone().enumerate() {
                *out[g].at_mut(r, c) = acc[i * tcols.len() + j];
            }
        }
        stats.add(&t.cost);
    }
    KernelRun { out, stats }
}

/// Dense GEMM (cuBLAS-like): `w` (m × k) times each group's gathered tokens `x[g]` (n_g × k).
pub fn dense_gemm(w: &[Matrix], x: &[Matrix]) -> KernelRun {
    let (m, k) = (w[0].rows, w[0].cols);
    let cols: Vec<usize> = x.iter().map(|x| x.rows).collect();
    run_tiles(
        Method::Dense,
        &SparsityFormat::default(),
        m,
        k,
        &cols,
        16,
        |g, r, c, lo, hi| (lo..hi).map(|kk| w[g].at(r, kk) * x[g].at(c, kk)).sum(),
    )
}

/// Weight-only 2:4 GEMM (cuSPARSELt-like): compressed `w` times dense gathered tokens.
pub fn nm_gemm(w: &[NmMatrix], x: &[Matrix]) -> KernelRun {
    let (m, k) = (w[0].rows, w[0].cols);
    let cols: Vec<usize> = x.iter().map(|x| x.rows).collect();
    let kpr = w[0].kept_per_row();
    run_tiles(
        Method::WeightSparse,
        &SparsityFormat::default(),
        m,
        k,
        &cols,
        32,
        |g, r, c, lo, hi| {
            // Kept values whose logical column lies in [lo, hi): groups lo/m .. hi/m.
            let (q_lo, q_hi) = (
                lo / w[g].m * w[g].n,
                (hi.div_ceil(w[g].m) * w[g].n).min(kpr),
            );
            (q_lo..q_hi)
                .map(|q| {
                    let col = w[g].column_of(r, q);
                    if col < x[g].cols {
                        w[g].values[r * kpr + q] * x[g].at(c, col)
                    } else {
                        0.0
                    }
                })
                .sum()
        },
    )
}

/// Activation-sparse grouped GEMM (MegaBlocks-like): per expert, dense `w[g]` times the tokens
/// routed to it, read from a permuted copy padded to `fmt.block_pad` tokens.
pub fn grouped_gemm(
    w: &[Matrix],
    hidden: &Matrix,
    routes: &[Vec<u32>],
    fmt: &SparsityFormat,
) -> KernelRun {
    let (m, k) = (w[0].rows, w[0].cols);
    // The permutation MegaBlocks materialises (padding rows are zero and are multiplied too).
    let permuted: Vec<Matrix> = routes
        .iter()
        .map(|r| Matrix::from_fn(r.len(), k, |t, c| hidden.at(r[t] as usize, c)))
        .collect();
    let cols: Vec<usize> = routes.iter().map(Vec::len).collect();
    run_tiles(
        Method::ActivationSparse,
        fmt,
        m,
        k,
        &cols,
        16,
        |g, r, c, lo, hi| {
            (lo..hi)
                .map(|kk| w[g].at(r, kk) * permuted[g].at(c, kk))
                .sum()
        },
    )
}

/// Samoyeds' sparse×sparse kernel: per expert, vector-wise + 2:4 weights times the routed tokens
/// read in place through the activation format's indices (padding slots are computed by the
/// hardware but never written). K steps cover 32 compacted positions (one mma.sp k32).
pub fn samoyeds_gemm(
    w: &[SamoyedsWeight],
    x: &[SparseActivation],
    fmt: &SparsityFormat,
) -> KernelRun {
    let (m, k) = (w[0].rows, w[0].cols);
    let cols: Vec<usize> = x.iter().map(SparseActivation::routed).collect();
    let kpr = w[0].inner.kept_per_row();
    // Kept values per 32 compacted positions (16 for 2:4).
    let per_step = 32 / w[0].inner.m * w[0].inner.n;
    run_tiles(
        Method::Samoyeds,
        fmt,
        m,
        k,
        &cols,
        32 * w[0].row_group,
        |g, r, c, lo, _| {
            let step = lo / (32 * w[g].row_group);
            let q_lo = step * per_step;
            (q_lo..(q_lo + per_step).min(kpr))
                .map(|q| {
                    let col = w[g].column_of(r, q);
                    if col < x[g].hidden {
                        w[g].inner.values[r * kpr + q] * x[g].values.at(c, col)
                    } else {
                        0.0
                    }
                })
                .sum()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiling::KernelStats;

    fn rand_matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
        let mut s = seed;
        Matrix::from_fn(rows, cols, |_, _| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
    }

    fn close(a: &Matrix, b: &Matrix) {
        assert_eq!((a.rows, a.cols), (b.rows, b.cols));
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// Columns `0..k` of `m` (drops the zero padding a format added to K).
    fn crop(m: &Matrix, k: usize) -> Matrix {
        Matrix::from_fn(m.rows, k, |r, c| m.at(r, c))
    }

    // Ragged shapes: rows not a multiple of 128, tokens not of 64/128, K not of 4·row_group.
    const SHAPES: [(usize, usize, usize); 3] = [(200, 70, 37), (128, 64, 64), (33, 5, 130)];

    #[test]
    fn dense_and_weight_sparse_equal_the_reference() {
        for (i, &(m, n, k)) in SHAPES.iter().enumerate() {
            let w = rand_matrix(m, k, 10 + i as u64);
            let x = rand_matrix(n, k, 20 + i as u64);
            let run = dense_gemm(std::slice::from_ref(&w), std::slice::from_ref(&x));
            close(&run.out[0], &w.matmul_t(&x));
            let s = NmMatrix::prune(&w, 2, 4);
            let run = nm_gemm(std::slice::from_ref(&s), std::slice::from_ref(&x));
            close(&run.out[0], &crop(&s.to_dense(), k).matmul_t(&x));
            assert_eq!(
                run.stats,
                KernelStats::of(&gemm_plan(
                    "p",
                    Method::WeightSparse,
                    &SparsityFormat::default(),
                    m,
                    s.cols,
                    &[n]
                ))
            );
        }
    }

    #[test]
    fn grouped_and_samoyeds_equal_the_reference_per_expert() {
        let fmt = SparsityFormat::default();
        for (i, &(m, tokens, k)) in SHAPES.iter().enumerate() {
            let hidden = rand_matrix(tokens, k, 30 + i as u64);
            let routes: Vec<Vec<u32>> = vec![
                (0..tokens as u32).filter(|t| t % 3 != 1).collect(),
                (0..tokens as u32).filter(|t| t % 3 == 1).collect(),
                vec![],
            ];
            let dense_w: Vec<Matrix> = (0..3)
                .map(|e| rand_matrix(m, k, 40 + e + 3 * i as u64))
                .collect();
            let grouped = grouped_gemm(&dense_w, &hidden, &routes, &fmt);
            let sam_w: Vec<SamoyedsWeight> = dense_w
                .iter()
                .map(|w| SamoyedsWeight::compress(w, 128, 2, 2, 4))
                .collect();
            let acts: Vec<SparseActivation> = routes
                .iter()
                .map(|r| SparseActivation::select(&hidden, r, 64))
                .collect();
            let sam = samoyeds_gemm(&sam_w, &acts, &fmt);
            for e in 0..3 {
                let x = Matrix::from_fn(routes[e].len(), k, |t, c| {
                    hidden.at(routes[e][t] as usize, c)
                });
                close(&grouped.out[e], &dense_w[e].matmul_t(&x));
                close(&sam.out[e], &crop(&sam_w[e].to_dense(), k).matmul_t(&x));
            }
            let cols: Vec<usize> = routes.iter().map(Vec::len).collect();
            assert_eq!(
                sam.stats,
                KernelStats::of(&gemm_plan(
                    "p",
                    Method::Samoyeds,
                    &fmt,
                    m,
                    sam_w[0].cols,
                    &cols
                ))
            );
        }
    }

    #[test]
    fn other_row_groups_also_equal_the_reference() {
        for g in [1usize, 4] {
            let fmt = SparsityFormat {
                row_group: g,
                ..SparsityFormat::default()
            };
            let hidden = rand_matrix(50, 96, 7);
            let route: Vec<u32> = (0..50).step_by(2).collect();
            let w = SamoyedsWeight::compress(&rand_matrix(140, 96, 8), 128, g, 2, 4);
            let run = samoyeds_gemm(
                std::slice::from_ref(&w),
                &[SparseActivation::select(&hidden, &route, 64)],
                &fmt,
            );
            let x = Matrix::from_fn(route.len(), 96, |t, c| hidden.at(route[t] as usize, c));
            close(&run.out[0], &crop(&w.to_dense(), 96).matmul_t(&x));
        }
    }
}
