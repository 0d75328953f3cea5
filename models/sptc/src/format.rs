//! Sparse data formats of the `sptc` family: N:M structured weights (2:4 on sparse tensor cores)
//! with per-value position metadata, Samoyeds' dual-side weight format (row selection per
//! 128-output vector, then N:M inside the kept rows), and Samoyeds' routed-activation format
//! (selected token indices padded to a multiple of 64, gathered values, 2-bit slot metadata).
//!
//! Matrices are row-major `f32` (the numeric kernels multiply in f32; storage sizes are counted as
//! the 16-bit values a GPU would store).

/// A dense row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// `rows × cols` values, row-major.
    pub data: Vec<f32>,
}

impl Matrix {
    /// An all-zero `rows × cols` matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// A matrix filled row-major by `f(row, col)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        Self { rows, cols, data }
    }

    /// Element (r, c).
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// Mutable element (r, c).
    pub fn at_mut(&mut self, r: usize, c: usize) -> &mut f32 {
        &mut self.data[r * self.cols + c]
    }

    /// Reference product `self × otherᵀ` (`self` is m×k, `other` is n×k): the dense oracle.
    pub fn matmul_t(&self, other: &Matrix) -> Matrix {
        assert_eq!(self.cols, other.cols, "inner dimensions differ");
        Matrix::from_fn(self.rows, other.rows, |i, j| {
            (0..self.cols).map(|k| self.at(i, k) * other.at(j, k)).sum()
        })
    }
}

/// An N:M structured-sparse matrix: in every group of `m` consecutive columns of a row at most `n`
/// values are kept; each kept value stores its position inside its group (2 bits for 2:4).
#[derive(Debug, Clone, PartialEq)]
pub struct NmMatrix {
    /// Rows.
    pub rows: usize,
    /// Logical (uncompressed) columns, a multiple of `m`.
    pub cols: usize,
    /// Kept values per group.
    pub n: usize,
    /// Group width.
    pub m: usize,
    /// `rows × cols·n/m` kept values, row-major, groups in order.
    pub values: Vec<f32>,
    /// Position (0..m) of each kept value inside its group, same layout as `values`.
    pub meta: Vec<u8>,
}

impl NmMatrix {
    /// Magnitude pruning: keeps the `n` largest |values| of every `m`-wide group of each row of
    /// `dense` (ties: the lower position), zero-padding the columns up to a multiple of `m`.
    pub fn prune(dense: &Matrix, n: usize, m: usize) -> Self {
        assert!(n >= 1 && n <= m && m <= 256, "N:M needs 1 ≤ n ≤ m ≤ 256");
        let cols = dense.cols.div_ceil(m) * m;
        let kept = cols / m * n;
        let mut values = Vec::with_capacity(dense.rows * kept);
        let mut meta = Vec::with_capacity(dense.rows * kept);
        let mut group: Vec<(f32, usize)> = Vec::with_capacity(m);
        for r in 0..dense.rows {
            for g in 0..cols / m {
                group.clear();
                for p in 0..m {
                    let c = g * m + p;
                    group.push((if c < dense.cols { dense.at(r, c) } else { 0.0 }, p));
                }
                group.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1)));
                let mut keep: Vec<(f32, usize)> = group[..n].to_vec();
                keep.sort_by_key(|x| x.1);
                for (v, p) in keep {
                    values.push(v);
                    meta.push(p as u8);
                }
            }
        }
        Self {
            rows: dense.rows,
            cols,
            n,
            m,
            values,
            meta,
        }
    }

    /// Kept values per row.
    pub fn kept_per_row(&self) -> usize {
        self.cols / self.m * self.n
    }

    /// Logical column of kept value `q` of a row.
    pub fn column_of(&self, row: usize, q: usize) -> usize {
        (q / self.n) * self.m + usize::from(self.meta[row * self.kept_per_row() + q])
    }

    /// The dense matrix this encodes (`rows × cols`).
    pub fn to_dense(&self) -> Matrix {
        let mut d = Matrix::zeros(self.rows, self.cols);
        let kpr = self.kept_per_row();
        for r in 0..self.rows {
            for q in 0..kpr {
                *d.at_mut(r, self.column_of(r, q)) = self.values[r * kpr + q];
            }
        }
        d
    }

    /// Metadata bits per kept value (⌈log₂ m⌉; 2 for 2:4).
    pub fn meta_bits(&self) -> u32 {
        meta_bits(self.m)
    }
}

/// Bits to store a position inside a group of `m` (⌈log₂ m⌉, at least 1 when m > 1).
pub fn meta_bits(m: usize) -> u32 {
    if m <= 1 {
        0
    } else {
        usize::BITS - (m - 1).leading_zeros()
    }
}

/// Samoyeds' weight format. For every block of `vector` consecutive output rows (128 in the
/// paper), the reduction dimension K is split into groups of `row_group` consecutive positions
/// ("rows" of the K×N weight as stored for the kernel) and one position per group is kept, the
/// same for the whole block (the one with the largest L2 norm over the block); then N:M pruning
/// runs inside each output row over the kept positions. With `row_group = 2` and 2:4 the density
/// is 1/2 · 1/2 = 25%.
#[derive(Debug, Clone, PartialEq)]
pub struct SamoyedsWeight {
    /// Output rows (m of the GEMM).
    pub rows: usize,
    /// Logical reduction width K (zero-padded to a multiple of `row_group·m`).
    pub cols: usize,
    /// Output rows sharing one K selection.
    pub vector: usize,
    /// One of every `row_group` K positions is kept per vector block.
    pub row_group: usize,
    /// Kept K positions of each vector block, ascending (`rows.div_ceil(vector)` lists of `cols / row_group`).
    pub selected: Vec<Vec<u32>>,
    /// N:M values over the compacted K (`rows × cols/row_group`).
    pub inner: NmMatrix,
}

impl SamoyedsWeight {
    /// Compresses `dense` (rows × K): vector-wise K selection, then N:M (`n`:`m`) pruning.
    pub fn compress(dense: &Matrix, vector: usize, row_group: usize, n: usize, m: usize) -> Self {
        assert!(
            vector >= 1 && row_group >= 1,
            "vector and row_group must be ≥ 1"
        );
        let cols = dense.cols.div_ceil(row_group * m) * row_group * m;
        let kc = cols / row_group;
        let get = |r: usize, c: usize| if c < dense.cols { dense.at(r, c) } else { 0.0 };
        let blocks = dense.rows.div_ceil(vector);
        let mut selected = Vec::with_capacity(blocks);
        let mut compact = Matrix::zeros(dense.rows, kc);
        for b in 0..blocks {
            let rows = b * vector..((b + 1) * vector).min(dense.rows);
            let mut sel = Vec::with_capacity(kc);
            for g in 0..kc {
                let best = (0..row_group)
                    .map(|p| {
                        let c = g * row_group + p;
                        (rows.clone().map(|r| get(r, c) * get(r, c)).sum::<f32>(), p)
                    })
                    .fold((-1.0f32, 0usize), |a, x| if x.0 > a.0 { x } else { a });
                sel.push((g * row_group + best.1) as u32);
            }
            for r in rows {
                for (g, &c) in sel.iter().enumerate() {
                    *compact.at_mut(r, g) = get(r, c as usize);
                }
            }
            selected.push(sel);
        }
        Self {
            rows: dense.rows,
            cols,
            vector,
            row_group,
            selected,
            inner: NmMatrix::prune(&compact, n, m),
        }
    }

    /// Logical K column of kept value `q` of row `r`.
    pub fn column_of(&self, r: usize, q: usize) -> usize {
        self.selected[r / self.vector][self.inner.column_of(r, q)] as usize
    }

    /// The dense matrix this encodes (`rows × cols`).
    pub fn to_dense(&self) -> Matrix {
        let mut d = Matrix::zeros(self.rows, self.cols);
        let kpr = self.inner.kept_per_row();
        for r in 0..self.rows {
            for q in 0..kpr {
                *d.at_mut(r, self.column_of(r, q)) = self.inner.values[r * kpr + q];
            }
        }
        d
    }

    /// Stored bytes: 16-bit values, N:M position metadata, and the per-block K selection
    /// (⌈log₂ row_group⌉ bits per kept position).
    pub fn bytes(&self) -> f64 {
        samoyeds_weight_bytes(
            self.rows,
            self.cols,
            self.vector,
            self.row_group,
            self.inner.n,
            self.inner.m,
        )
    }
}

/// Storage bytes of an `rows × k` weight in Samoyeds' format (16-bit values).
pub fn samoyeds_weight_bytes(
    rows: usize,
    k: usize,
    vector: usize,
    row_group: usize,
    n: usize,
    m: usize,
) -> f64 {
    let kc = k.div_ceil(row_group * m) * m;
    let kept = (kc / m * n) as f64 * rows as f64;
    let sel_bits = (rows.div_ceil(vector) * kc) as f64 * f64::from(meta_bits(row_group));
    kept * 2.0 + kept * f64::from(meta_bits(m)) / 8.0 + sel_bits / 8.0
}

/// Storage bytes of an `rows × k` N:M weight (16-bit values plus position metadata).
pub fn nm_weight_bytes(rows: usize, k: usize, n: usize, m: usize) -> f64 {
    let kept = (k.div_ceil(m) * n) as f64 * rows as f64;
    kept * 2.0 + kept * f64::from(meta_bits(m)) / 8.0
}

/// Slot code of [`SparseActivation::meta`]: a padding slot (no token).
pub const SLOT_PAD: u8 = 0b00;
/// Slot code of [`SparseActivation::meta`]: a routed token.
pub const SLOT_TOKEN: u8 = 0b01;

/// Samoyeds' activation format for one expert: the tokens the router sent to it, padded to a
/// multiple of `pad` (64 in the paper), as gathered 16-bit values plus the token indices and a
/// 2-bit code per slot (routed token or padding; packed four per byte), so the kernel reads the
/// selected tokens in place and skips padding when it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseActivation {
    /// Hidden width K.
    pub hidden: usize,
    /// Tokens in the whole batch (the dense side of the index space).
    pub tokens_total: usize,
    /// Token index of each slot (padded slots repeat 0 and are masked by `meta`).
    pub indices: Vec<u32>,
    /// 2-bit slot codes ([`SLOT_TOKEN`] or [`SLOT_PAD`]), one per slot.
    pub meta: Vec<u8>,
    /// `slots × hidden` values (padding rows are zero).
    pub values: Matrix,
}

impl SparseActivation {
    /// Builds the format from `hidden_states` (tokens × K) and the tokens routed to this expert.
    pub fn select(hidden_states: &Matrix, tokens: &[u32], pad: usize) -> Self {
        let slots = tokens.len().div_ceil(pad.max(1)) * pad.max(1);
        let mut indices = tokens.to_vec();
        indices.resize(slots, 0);
        let meta: Vec<u8> = (0..slots)
            .map(|s| {
                if s < tokens.len() {
                    SLOT_TOKEN
                } else {
                    SLOT_PAD
                }
            })
            .collect();
        let values = Matrix::from_fn(slots, hidden_states.cols, |s, c| {
            if s < tokens.len() {
                hidden_states.at(tokens[s] as usize, c)
            } else {
                0.0
            }
        });
        Self {
            hidden: hidden_states.cols,
            tokens_total: hidden_states.rows,
            indices,
            meta,
            values,
        }
    }

    /// Slots (routed tokens plus padding).
    pub fn slots(&self) -> usize {
        self.indices.len()
    }

    /// Routed (non-padding) tokens.
    pub fn routed(&self) -> usize {
        self.meta.iter().filter(|&&m| m == SLOT_TOKEN).count()
    }

    /// Bytes of indices (4 each) and packed 2-bit codes, beside the values.
    pub fn index_bytes(&self) -> f64 {
        self.slots() as f64 * (4.0 + 0.25)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    #[test]
    fn two_four_keeps_exactly_two_of_every_four_and_the_largest() {
        let mut r = lcg(1);
        let d = Matrix::from_fn(7, 24, |_, _| r());
        let s = NmMatrix::prune(&d, 2, 4);
        let back = s.to_dense();
        for row in 0..7 {
            for g in 0..6 {
                let nz: Vec<usize> = (0..4).filter(|p| back.at(row, g * 4 + p) != 0.0).collect();
                assert_eq!(nz.len(), 2, "row {row} group {g}");
                let min_kept = nz
                    .iter()
                    .map(|&p| d.at(row, g * 4 + p).abs())
                    .fold(f32::INFINITY, f32::min);
                let max_dropped = (0..4)
                    .filter(|p| !nz.contains(p))
                    .map(|p| d.at(row, g * 4 + p).abs())
                    .fold(0.0, f32::max);
                assert!(min_kept >= max_dropped);
            }
        }
        assert_eq!(s.meta_bits(), 2);
        assert!(s.meta.iter().all(|&m| m < 4));
    }

    #[test]
    fn samoyeds_format_has_quarter_density_and_shared_selection() {
        let mut r = lcg(2);
        let d = Matrix::from_fn(200, 64, |_, _| r());
        let w = SamoyedsWeight::compress(&d, 128, 2, 2, 4);
        let back = w.to_dense();
        let nnz = back.data.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(nnz, 200 * 64 / 4);
        // Within a 128-row block, a K column is either used by some row or dropped for all rows.
        for b in 0..2 {
            for pair in 0..32 {
                let used = |c: usize| {
                    (b * 128..((b + 1) * 128).min(200)).any(|row| back.at(row, c) != 0.0)
                };
                assert!(
                    !(used(2 * pair) && used(2 * pair + 1)),
                    "block {b} pair {pair}"
                );
            }
        }
        assert!(
            (w.bytes() - (200.0 * 16.0 * 2.0 + 200.0 * 16.0 / 4.0 + 2.0 * 32.0 / 8.0)).abs() < 1e-9
        );
    }

    #[test]
    fn activation_format_pads_to_64_and_marks_padding() {
        let h = Matrix::from_fn(100, 8, |r, c| (r * 8 + c) as f32);
        let a = SparseActivation::select(&h, &[3, 7, 99], 64);
        assert_eq!(a.slots(), 64);
        assert_eq!(a.routed(), 3);
        assert_eq!(a.values.at(2, 5), h.at(99, 5));
        assert_eq!(a.values.at(3, 5), 0.0);
        assert_eq!(a.meta[3], SLOT_PAD);
        assert_eq!(SparseActivation::select(&h, &[], 64).slots(), 0);
    }
}
