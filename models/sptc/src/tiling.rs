//! Tiling of the four GEMM kernels (and of the attention and element-wise kernels a decoder layer
//! also runs): which thread-block tiles a launch has, and what each tile costs in tensor-core MMA
//! instructions, bytes and useful FLOPs. The numeric kernels (`kernel.rs`) execute exactly these
//! tiles; the GPU model (`gpu.rs`) times them. Large shapes are planned here without multiplying.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::format::meta_bits;

/// A MoE GEMM implementation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// cuBLAS-like dense GEMM (m16n8k16 MMA, 128×128 tiles) on gathered tokens, one launch per expert.
    Dense,
    /// cuSPARSELt-like weight-only 2:4 GEMM (mma.sp m16n8k32, 128×128 tiles), one launch per expert.
    WeightSparse,
    /// MegaBlocks-like grouped GEMM over all experts: tokens permuted and padded to 128 per expert,
    /// dense weights, one launch.
    ActivationSparse,
    /// Samoyeds: dual-side sparse — vector-wise + 2:4 weights, routed tokens read through indices
    /// (padded to 64), mma.sp m16n8k32, 128×64 tiles, one launch over all experts.
    Samoyeds,
    /// VENOM/Spatha (SC'23): V:N:M weights at Samoyeds' density (V = `vector`, 1 of `row_group`
    /// K positions per vector, then 2:4 — i.e. 128:2:8), mma.sp m16n8k32 on gathered tokens, one
    /// launch per expert.
    Venom,
    /// Sputnik (SC'20): unstructured weights at Samoyeds' density (25 %) in CSR with 16-bit
    /// column indices, CUDA-core FMAs (no tensor cores), one launch per expert.
    Sputnik,
    /// vLLM fused-MoE: one grouped dense kernel over all experts per projection, tokens read in
    /// place through a sorted index list padded to 64 per expert (`moe_align_block_size`).
    FusedMoe,
}

impl Method {
    /// All seven, in the order metrics are emitted.
    pub const ALL: [Method; 7] = [
        Method::Dense,
        Method::WeightSparse,
        Method::ActivationSparse,
        Method::Samoyeds,
        Method::Venom,
        Method::Sputnik,
        Method::FusedMoe,
    ];

    /// Metric-name stem.
    pub fn key(self) -> &'static str {
        match self {
            Method::Dense => "dense",
            Method::WeightSparse => "weight_sparse",
            Method::ActivationSparse => "activation_sparse",
            Method::Samoyeds => "samoyeds",
            Method::Venom => "venom",
            Method::Sputnik => "sputnik",
            Method::FusedMoe => "fused_moe",
        }
    }

    /// Thread-block tile (rows of the weight, token columns).
    pub fn tile(self) -> (usize, usize) {
        match self {
            Method::Samoyeds | Method::Venom | Method::Sputnik => (128, 64),
            Method::FusedMoe => (64, 64),
            _ => (128, 128),
        }
    }

    /// Whether the kernel issues sparse MMA (mma.sp) instructions.
    pub fn sparse_mma(self) -> bool {
        matches!(
            self,
            Method::WeightSparse | Method::Samoyeds | Method::Venom
        )
    }

    /// Whether the weight keeps one of `row_group` K positions per vector (V:N:M-style), so the
    /// kernel gathers those K rows of the token tile.
    pub fn vector_selected(self) -> bool {
        matches!(self, Method::Samoyeds | Method::Venom)
    }

    /// Whether the kernel runs one launch per expert in Transformers' loop over gathered tokens.
    pub fn per_expert_loop(self) -> bool {
        matches!(
            self,
            Method::Dense | Method::WeightSparse | Method::Venom | Method::Sputnik
        )
    }
}

/// Sparsity format knobs (paper defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SparsityFormat {
    /// Output rows sharing one K selection in Samoyeds' weight format (paper: 128).
    pub vector: usize,
    /// Samoyeds keeps 1 of every `row_group` K positions per vector (paper: 2; 1 = plain 2:4).
    pub row_group: usize,
    /// Samoyeds pads each expert's routed tokens to a multiple of this (paper: 64).
    pub token_pad: usize,
    /// MegaBlocks pads each expert's tokens to a multiple of its block size (128).
    pub block_pad: usize,
}

impl Default for SparsityFormat {
    fn default() -> Self {
        Self {
            vector: 128,
            row_group: 2,
            token_pad: 64,
            block_pad: 128,
        }
    }
}

impl Validate for SparsityFormat {
    fn validate(&self, c: &mut Checks) {
        if self.vector == 0 || !self.vector.is_multiple_of(128) {
            c.fail(
                "vector",
                format!(
                    "must be a positive multiple of 128 (the kernel's row tile), got {}",
                    self.vector
                ),
            );
        }
        c.between("row_group", self.row_group, 1, 64);
        c.between("token_pad", self.token_pad, 1, 4096);
        c.between("block_pad", self.block_pad, 1, 4096);
    }
}

/// 2:4 is the pattern sparse tensor cores execute.
pub const N: usize = 2;
/// Group width of the hardware pattern.
pub const M: usize = 4;
/// Dense-equivalent FLOPs of one MMA issue slot: m16n8k16 dense (2·16·8·16); an mma.sp m16n8k32
/// does twice the logical work in the same slot.
pub const MMA_SLOT_FLOPS: f64 = 4096.0;
/// Bytes of one 16-bit element.
pub const ELEM: f64 = 2.0;

/// What one thread-block tile costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TileCost {
    /// Tensor-core MMA instructions (per warp-level 16×8 fragment and K step).
    pub mma: u64,
    /// Whether they are mma.sp (2:4) instructions.
    pub sparse: bool,
    /// Weight bytes read (values + metadata + selection).
    pub a_bytes: f64,
    /// Activation bytes read (values + indices).
    pub b_bytes: f64,
    /// Output bytes written.
    pub c_bytes: f64,
    /// Useful (dense-equivalent, unpadded) FLOPs.
    pub flops: f64,
    /// Main-loop iterations (pipeline stages consumed); 0 for kernels without a K loop.
    pub ksteps: u64,
    /// Shared-memory bytes read by the warps' conflict-free fragment loads over the whole tile.
    pub smem_bytes: f64,
    /// Shared-memory bytes of gathered token fragments (replayed by the bank-conflict degree).
    pub smem_gather_bytes: f64,
    /// FLOPs executed on CUDA cores (FMA pipes) instead of tensor cores.
    pub fma_flops: f64,
}

/// One thread-block tile of a launch; tiles with the same (group, row_block) share weight data,
/// tiles with the same (group, col_block) share activation data (the L2 reuse model keys on these).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tile {
    /// Expert (or head) index.
    pub group: u32,
    /// Row-block index.
    pub row_block: u32,
    /// Column-block index.
    pub col_block: u32,
    /// Cost.
    pub cost: TileCost,
}

/// A kernel launch: its tiles in dispatch order and the shared memory one block needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelPlan {
    /// Kernel label (e.g. `"moe.up"`).
    pub name: String,
    /// Tiles in dispatch order.
    pub tiles: Vec<Tile>,
    /// Shared memory per thread block, bytes (sets blocks per SM).
    pub smem_bytes: u64,
    /// How the kernel runs its tiles (pipeline stages, warp grid).
    pub traits: super::efficiency::KernelTraits,
    /// Shared-memory bank-conflict degree of the gathered token-fragment loads (1 = none),
    /// measured on this run's sampled weight block for V:N:M-style kernels.
    pub gather_conflict: f64,
}

/// Stored weight bytes per output row with reduction width `k`.
pub fn weight_row_bytes(method: Method, fmt: &SparsityFormat, k: usize) -> f64 {
    match method {
        Method::Dense | Method::ActivationSparse | Method::FusedMoe => k as f64 * ELEM,
        Method::WeightSparse => super::format::nm_weight_bytes(1, k, N, M),
        // 16-bit value + 16-bit column index per kept weight (Sputnik's mixed-precision CSR), plus
        // a 32-bit row offset.
        Method::Sputnik => k as f64 * UNSTRUCTURED_DENSITY * (ELEM + 2.0) + 4.0,
        Method::Samoyeds | Method::Venom => {
            super::format::samoyeds_weight_bytes(fmt.vector, k, fmt.vector, fmt.row_group, N, M)
                / fmt.vector as f64
        }
    }
}

/// MMA instructions of one `method` tile of `tile` (rows, token columns) over reduction width `k`.
pub fn tile_mma(method: Method, fmt: &SparsityFormat, tile: (usize, usize), k: usize) -> u64 {
    let (bm, bn) = tile;
    let frags = (bm / 16 * bn / 8) as u64;
    let ksteps = match method {
        Method::Dense | Method::ActivationSparse | Method::FusedMoe => k.div_ceil(16),
        Method::WeightSparse => k.div_ceil(32),
        Method::Samoyeds | Method::Venom => k.div_ceil(fmt.row_group).div_ceil(32),
        Method::Sputnik => 0,
    };
    frags * ksteps as u64
}

/// Weight density of the unstructured (Sputnik) baseline: Samoyeds' 25 % (1/2 × 2:4).
pub const UNSTRUCTURED_DENSITY: f64 = 0.25;

/// Main-loop iterations (pipeline stages consumed) of one `method` tile over reduction width `k`:
/// each covers 32 positions of the (compacted) reduction dimension.
pub fn tile_ksteps(method: Method, fmt: &SparsityFormat, k: usize) -> u64 {
    let kc = if method.vector_selected() {
        k.div_ceil(fmt.row_group)
    } else {
        k
    };
    kc.div_ceil(32).max(1) as u64
}

/// Shared-memory bytes the warps of one `method` tile read per main-loop iteration, as (weight
/// fragments, token fragments): each warp loads its A fragment (`bm / warps_m` rows) and B
/// fragment (`bn / warps_n` columns) of the 32-wide (compacted) K slice, so A is read `warps_n`
/// times and B `warps_m` times per block.
pub fn smem_read_bytes_per_step(
    method: Method,
    fmt: &SparsityFormat,
    tile: (usize, usize),
) -> (f64, f64) {
    let (bm, bn) = tile;
    let t = super::efficiency::traits(method);
    let k_logical = if method.vector_selected() {
        32 * fmt.row_group
    } else {
        32
    };
    let a = bm as f64 * weight_row_bytes(method, fmt, k_logical) * f64::from(t.warps_n);
    let b = bn as f64 * 32.0 * ELEM * f64::from(t.warps_m);
    (a, b)
}

/// Cost of one GEMM tile of shape `tile` with `rows` valid weight rows, `cols` valid token columns
/// and `loaded` token columns read from memory (padding stored in memory is read), reduction
/// width `k`.
pub fn tile_cost(
    method: Method,
    fmt: &SparsityFormat,
    tile: (usize, usize),
    rows: usize,
    cols: usize,
    loaded: usize,
    k: usize,
) -> TileCost {
    let index_bytes = match method {
        Method::Samoyeds => loaded as f64 * 4.25,
        Method::FusedMoe => loaded as f64 * 4.0,
        _ => 0.0,
    };
    // Samoyeds reads only 1 of `row_group` activation elements along K, but a 32-byte DRAM sector
    // holds 16 consecutive elements, so for row_group ≤ 16 the whole token row is still fetched.
    let b_k = if method.vector_selected() && fmt.row_group > 16 {
        k.div_ceil(fmt.row_group)
    } else {
        k
    };
    let ksteps = tile_ksteps(method, fmt, k);
    let (a, b) = smem_read_bytes_per_step(method, fmt, tile);
    // Token fragments of V:N:M-style kernels are gathered rows (bank conflicts); others are not.
    let (smem_a, smem_b) = if method.vector_selected() {
        (a, b)
    } else {
        (a + b, 0.0)
    };
    let fma_flops = if method == Method::Sputnik {
        2.0 * rows as f64 * cols as f64 * k as f64 * UNSTRUCTURED_DENSITY
    } else {
        0.0
    };
    TileCost {
        mma: tile_mma(method, fmt, tile, k),
        sparse: method.sparse_mma(),
        a_bytes: rows as f64 * weight_row_bytes(method, fmt, k),
        b_bytes: loaded as f64 * b_k as f64 * ELEM + index_bytes,
        c_bytes: rows as f64 * cols as f64 * ELEM,
        flops: 2.0 * rows as f64 * cols as f64 * k as f64,
        ksteps,
        smem_bytes: ksteps as f64 * smem_a,
        smem_gather_bytes: ksteps as f64 * smem_b,
        fma_flops,
    }
}

/// Shared memory of one `method` block: its pipeline stages, each a 32-wide (compacted K) slice
/// of the weight tile (compressed) and of the token tile (all `row_group` · 32 logical K rows for
/// V:N:M-style kernels, which gather the kept rows from shared memory).
pub fn smem_bytes(method: Method, fmt: &SparsityFormat, tile: (usize, usize)) -> u64 {
    let (bm, bn) = tile;
    let k_logical = if method.vector_selected() {
        32 * fmt.row_group
    } else {
        32
    };
    let a = bm as f64 * weight_row_bytes(method, fmt, k_logical);
    let b = bn as f64 * k_logical as f64 * ELEM;
    let stages = f64::from(super::efficiency::traits(method).stages);
    (stages * (a + b)).ceil() as u64
}

/// Token columns each group presents to `method` after padding (stored padding for MegaBlocks,
/// index padding for Samoyeds, none for the per-expert dense kernels).
pub fn padded_cols(method: Method, fmt: &SparsityFormat, cols: usize) -> usize {
    match method {
        Method::ActivationSparse => cols.div_ceil(fmt.block_pad) * fmt.block_pad,
        Method::Samoyeds | Method::FusedMoe => cols.div_ceil(fmt.token_pad) * fmt.token_pad,
        _ => cols,
    }
}

/// Row blocks per swizzle band: tiles are dispatched band by band, column-major inside a band
/// (CUTLASS-style threadblock swizzle), so consecutive blocks share weight and activation blocks.
pub const SWIZZLE: usize = 8;

/// Thread-block tiles (weight rows, token columns) a tuned dense or 2:4 library chooses among per
/// shape (cuBLAS heuristics, cusparseLtMatmulSearch): the 128×128, 128×64, 64×128 and 64×64 entries
/// of the tile menu in NVIDIA's Matrix Multiplication Background User's Guide, §2.3.
pub const LIBRARY_TILES: [(usize, usize); 4] = [(128, 128), (128, 64), (64, 128), (64, 64)];

/// Tiles of a (grouped) GEMM with `method`'s own tile shape: weight `m × k` per group, `cols[g]`
/// routed tokens for group `g`.
pub fn gemm_plan(
    name: &str,
    method: Method,
    fmt: &SparsityFormat,
    m: usize,
    k: usize,
    cols: &[usize],
) -> KernelPlan {
    gemm_plan_tiled(name, (method, fmt), (m, k, cols), method.tile())
}

/// Tiles of a (grouped) GEMM of `shape` (m, k, routed tokens per group) for `kernel` (method,
/// format) with tile shape `tile` (weight rows, token columns). Dispatch order: group, then bands
/// of [`SWIZZLE`] row blocks, then column block, then row block.
pub fn gemm_plan_tiled(
    name: &str,
    kernel: (Method, &SparsityFormat),
    shape: (usize, usize, &[usize]),
    tile: (usize, usize),
) -> KernelPlan {
    let ((method, fmt), (m, k, cols), (bm, bn)) = (kernel, shape, tile);
    let mut tiles = Vec::new();
    let row_blocks = m.div_ceil(bm);
    for (g, &n) in cols.iter().enumerate() {
        let slots = padded_cols(method, fmt, n);
        for band in (0..row_blocks).step_by(SWIZZLE) {
            for cb in 0..slots.div_ceil(bn) {
                for rb in band..(band + SWIZZLE).min(row_blocks) {
                    let rows = bm.min(m - rb * bm);
                    let lo = cb * bn;
                    let valid = bn.min(n.saturating_sub(lo));
                    let loaded = if method == Method::ActivationSparse {
                        bn.min(slots - lo)
                    } else {
                        valid
                    };
                    tiles.push(Tile {
                        group: g as u32,
                        row_block: rb as u32,
                        col_block: cb as u32,
                        cost: tile_cost(method, fmt, tile, rows, valid, loaded, k),
                    });
                }
            }
        }
    }
    KernelPlan {
        name: name.into(),
        tiles,
        smem_bytes: smem_bytes(method, fmt, tile),
        traits: super::efficiency::traits(method),
        gather_conflict: 1.0,
    }
}

/// A memory-bound element-wise kernel (gather, activation, scatter, top-k): `read + write` bytes
/// in chunks of 64 KiB per block, no MMA.
pub fn elementwise_plan(name: &str, read_bytes: f64, write_bytes: f64) -> KernelPlan {
    const CHUNK: f64 = 65_536.0;
    let total = read_bytes + write_bytes;
    let blocks = (total / CHUNK).ceil().max(1.0) as usize;
    let tiles = (0..blocks)
        .map(|b| Tile {
            group: 0,
            row_block: b as u32,
            col_block: 0,
            cost: TileCost {
                b_bytes: read_bytes / blocks as f64,
                c_bytes: write_bytes / blocks as f64,
                ..TileCost::default()
            },
        })
        .collect();
    KernelPlan {
        name: name.into(),
        tiles,
        smem_bytes: 0,
        traits: super::efficiency::ELEMENTWISE,
        gather_conflict: 1.0,
    }
}

/// FlashAttention-style kernel: one block per (sequence, head, 128-query block); causal prefill
/// (each query block attends to the keys up to its end) or decode (`q_len = 1`).
pub fn attention_plan(
    name: &str,
    seqs: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    q_len: usize,
    ctx: usize,
) -> KernelPlan {
    let bq = 128usize;
    let mut tiles = Vec::new();
    let group = heads / kv_heads.max(1);
    for s in 0..seqs {
        for h in 0..heads {
            for qb in 0..q_len.div_ceil(bq) {
                let q = bq.min(q_len - qb * bq);
                // Keys visible to this block: the prefix before the new tokens plus the causal part.
                let keys = (ctx - q_len + (qb * bq + q)).max(1);
                let qk = (bq / 16 * keys.div_ceil(8) * head_dim.div_ceil(16)) as u64;
                let av = (bq / 16 * head_dim.div_ceil(8) * keys.div_ceil(16)) as u64;
                tiles.push(Tile {
                    group: (s * kv_heads + h / group) as u32,
                    row_block: qb as u32,
                    col_block: 0,
                    cost: TileCost {
                        mma: qk + av,
                        sparse: false,
                        a_bytes: (q * head_dim) as f64 * ELEM,
                        b_bytes: 2.0 * (keys * head_dim) as f64 * ELEM,
                        c_bytes: (q * head_dim) as f64 * ELEM,
                        flops: 4.0 * (q * keys * head_dim) as f64,
                        // One main-loop iteration per 64-key block (FlashAttention-2's K/V tile).
                        ksteps: keys.div_ceil(64) as u64,
                        ..TileCost::default()
                    },
                });
            }
        }
    }
    KernelPlan {
        name: name.into(),
        tiles,
        smem_bytes: (bq * head_dim * 2 + 2 * 64 * head_dim * 2 * 2) as u64,
        traits: super::efficiency::FLASH_ATTENTION,
        gather_conflict: 1.0,
    }
}

/// Totals of a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelStats {
    /// Thread-block tiles.
    pub tiles: u64,
    /// Dense MMA instructions.
    pub dense_mma: u64,
    /// Sparse (mma.sp) MMA instructions.
    pub sparse_mma: u64,
    /// Bytes requested (before L2 reuse).
    pub bytes: f64,
    /// Useful dense-equivalent FLOPs.
    pub flops: f64,
}

impl KernelStats {
    /// Adds one tile.
    pub fn add(&mut self, c: &TileCost) {
        self.tiles += 1;
        if c.sparse {
            self.sparse_mma += c.mma;
        } else {
            self.dense_mma += c.mma;
        }
        self.bytes += c.a_bytes + c.b_bytes + c.c_bytes;
        self.flops += c.flops;
    }

    /// Totals of every tile of `plan`.
    pub fn of(plan: &KernelPlan) -> Self {
        let mut s = Self::default();
        plan.tiles.iter().for_each(|t| s.add(&t.cost));
        s
    }
}

/// Metadata bits per kept weight value of the hardware pattern (2 for 2:4).
pub fn hw_meta_bits() -> u32 {
    meta_bits(M)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_four_issues_half_the_mma_of_dense_and_samoyeds_a_quarter() {
        let f = SparsityFormat::default();
        let d = KernelStats::of(&gemm_plan("d", Method::Dense, &f, 4096, 4096, &[4096]));
        let w = KernelStats::of(&gemm_plan(
            "w",
            Method::WeightSparse,
            &f,
            4096,
            4096,
            &[4096],
        ));
        let s = KernelStats::of(&gemm_plan("s", Method::Samoyeds, &f, 4096, 4096, &[4096]));
        assert_eq!(w.sparse_mma * 2, d.dense_mma);
        assert_eq!(s.sparse_mma * 4, d.dense_mma);
        assert_eq!(d.flops, w.flops);
        // Plain 2:4 dual side (row_group 1) is the weight-only count.
        let f1 = SparsityFormat { row_group: 1, ..f };
        let s1 = KernelStats::of(&gemm_plan("s", Method::Samoyeds, &f1, 4096, 4096, &[4096]));
        assert_eq!(s1.sparse_mma, w.sparse_mma);
        assert_eq!(hw_meta_bits(), 2);
    }

    #[test]
    fn padding_differs_per_method() {
        let f = SparsityFormat::default();
        assert_eq!(padded_cols(Method::Samoyeds, &f, 65), 128);
        assert_eq!(padded_cols(Method::ActivationSparse, &f, 65), 128);
        assert_eq!(padded_cols(Method::ActivationSparse, &f, 129), 256);
        assert_eq!(padded_cols(Method::Dense, &f, 65), 65);
        let p = gemm_plan("s", Method::Samoyeds, &f, 256, 64, &[65, 0, 10]);
        assert_eq!(p.tiles.len(), 2 * 2 + 2);
    }
}
