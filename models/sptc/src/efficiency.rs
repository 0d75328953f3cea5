//! Tile-level efficiency: why a kernel does not run at the tensor-core peak. For each tile on an
//! SM the model takes the larger of three per-iteration costs of its main loop, summed over the
//! blocks resident on the SM together:
//!
//! * **issue** — MMA (or CUDA-core FMA) time at the unit's peak, divided by the fraction of the
//!   peak a tuned main loop sustains (`EfficiencyParams::tensor_issue`, fitted to cuBLAS, and
//!   `cuda_core`, fitted to Sputnik — both `calibration` claims in reports/samoyeds.yaml);
//! * **shared memory** — the warps' fragment loads at 128 bytes per clock per SM (32 banks × 4 B,
//!   CUDA C Programming Guide, "Shared Memory"), the token fragment of V:N:M-style kernels
//!   replayed by its bank-conflict degree ([`gather_conflict_degree`], measured on the run's
//!   sampled weights);
//! * **load latency** — a cp.async pipeline of `stages` buffers keeps `stages − 1` loads in
//!   flight per block (CUTLASS "Efficient GEMM", software pipelining), so one block cannot iterate
//!   faster than one L2/DRAM latency per `stages − 1` iterations; with few blocks per SM (small
//!   shapes, the last wave) the loop is latency-bound.
//!
//! Each tile also waits one load latency to fill its pipeline (prologue). Waves, occupancy and
//! the tail (a last wave with few tiles) come from the device model (`gpu.rs`), L2 reuse from its
//! LRU set, and launch overhead from the GPU preset.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::gpu::GpuSpec;
use super::tiling::{Method, TileCost};

/// Shared-memory bandwidth per SM per clock: 32 banks × 4 bytes (CUDA C Programming Guide,
/// "Shared Memory", compute capability 5.x–9.0).
pub const SMEM_BYTES_PER_CLK: f64 = 128.0;

/// How a kernel implementation runs its tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelTraits {
    /// Shared-memory pipeline stages (cp.async multistage; 1 = no overlap of loads and math).
    pub stages: u32,
    /// Warps along the weight rows of the tile.
    pub warps_m: u32,
    /// Warps along the token columns of the tile.
    pub warps_n: u32,
}

/// Element-wise kernels: no main loop.
pub const ELEMENTWISE: KernelTraits = KernelTraits {
    stages: 1,
    warps_m: 1,
    warps_n: 1,
};

/// FlashAttention-2: 4 warps split the 128 query rows, K/V tiles double-buffered (Dao 2023,
/// FlashAttention-2, §3.3 "work partitioning between warps").
pub const FLASH_ATTENTION: KernelTraits = KernelTraits {
    stages: 2,
    warps_m: 4,
    warps_n: 1,
};

/// The implementation traits of each GEMM method, with their sources.
pub fn traits(method: Method) -> KernelTraits {
    match method {
        // cuBLAS on Ampere/Ada: 128×128 tiles, 2×2 warps, 3 stages — the profiled kernel names
        // `ampere_fp16_s1688gemm_fp16_128x128_..._stages_32x1` and `sm80_xmma_gemm_..._stage3_
        // warpsize2x2x1` (xlite-dev/LeetCUDA kernels/hgemm/README.md, PyTorch HGEMM profile).
        Method::Dense => KernelTraits {
            stages: 3,
            warps_m: 2,
            warps_n: 2,
        },
        // cuSPARSELt's kernels are closed; CUTLASS examples/15_ampere_sparse_tensorop_gemm runs
        // 128×128 tiles with 64×64 warp tiles and 3 stages [estimate: same as that example].
        Method::WeightSparse => KernelTraits {
            stages: 3,
            warps_m: 2,
            warps_n: 2,
        },
        // MegaBlocks' block-sparse Triton kernels: 128×128 blocks, 4 warps [estimate: Triton's
        // default 3 stages].
        Method::ActivationSparse => KernelTraits {
            stages: 3,
            warps_m: 2,
            warps_n: 2,
        },
        // Samoyeds' SSMM kernel: BlockShape 128×32×64, WarpShape 32×32×64, stage = 2
        // (guqiqi/Samoyeds-Kernel benchmark/methods/ssmm_timer.h): 4 warps along the rows.
        Method::Samoyeds => KernelTraits {
            stages: 2,
            warps_m: 4,
            warps_n: 1,
        },
        // Spatha (VENOM): [estimate] the same structure as Samoyeds' kernel, which ships
        // VENOM's format beside its own (Samoyeds-Kernel benchmark/format/format_venom.cpp).
        Method::Venom => KernelTraits {
            stages: 2,
            warps_m: 4,
            warps_n: 1,
        },
        // Sputnik: 1-D tiles of rows, register double-buffering of the next nonzeros
        // [estimate: 2 stages, 4 warps along the rows].
        Method::Sputnik => KernelTraits {
            stages: 2,
            warps_m: 4,
            warps_n: 1,
        },
        // vLLM fused_moe Triton kernel, default config BLOCK_SIZE_M = N = 64, BLOCK_SIZE_K = 32,
        // 4 warps (vllm/model_executor/layers/fused_moe get_default_config) [estimate: Triton's
        // default 3 stages].
        Method::FusedMoe => KernelTraits {
            stages: 3,
            warps_m: 2,
            warps_n: 2,
        },
    }
}

/// The fitted fractions of the units' peaks that a tuned main loop sustains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EfficiencyParams {
    /// Fraction of the tensor-core peak a tuned GEMM main loop sustains. Fitted so that the
    /// dense kernel gives cuBLAS's measured 114.7 TFLOPS at 16384³ on an NVIDIA L20 (119.5
    /// TFLOPS peak; xlite-dev/LeetCUDA kernels/hgemm/README.md) — claim `cal-cublas`.
    pub tensor_issue: f64,
    /// Fraction of the CUDA-core FP16 peak Sputnik's SpMM sustains. Fitted so that the modelled
    /// Sputnik reaches 27 % of the CUDA-core peak on a large shape at its benchmark densities
    /// (Gale et al., SC'20: "our kernels reach 27% of single-precision peak on V100") — claim
    /// `cal-sputnik`.
    pub cuda_core: f64,
}

impl Default for EfficiencyParams {
    fn default() -> Self {
        Self {
            tensor_issue: 0.965,
            cuda_core: 0.271,
        }
    }
}

impl Validate for EfficiencyParams {
    fn validate(&self, c: &mut Checks) {
        c.within("tensor_issue", self.tensor_issue, 0.01, 1.0);
        c.within("cuda_core", self.cuda_core, 0.01, 1.0);
    }
}

/// Mean bank-conflict degree of the ldmatrix phases that read the token fragment of a V:N:M-style
/// kernel. The stage's token tile sits in shared memory one row per logical K position (128-byte
/// rows) with CUTLASS's XOR swizzle (16-byte chunk `c` of row `r` stored at `c XOR (r mod 8)`), so
/// 8 consecutive rows are conflict-free; the kernel reads only the kept rows, 8 per phase, and
/// rows with equal `r mod 8` land in the same banks. A phase costs as many cycles as its largest
/// such group. `kept` are the kept K positions of one vector block, ascending.
pub fn gather_conflict_degree(kept: &[u32]) -> f64 {
    let mut phases = 0u64;
    let mut cycles = 0u64;
    for phase in kept.chunks(8) {
        let mut count = [0u64; 8];
        for &r in phase {
            count[(r % 8) as usize] += 1;
        }
        cycles += count.iter().copied().max().unwrap_or(1);
        phases += 1;
    }
    if phases == 0 {
        1.0
    } else {
        cycles as f64 / phases as f64
    }
}

/// What one tile needs of its SM.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TileTime {
    /// Time the tile occupies the SM's busiest pipe (tensor/FMA issue or shared memory), seconds;
    /// tiles resident together add up.
    pub pipe_s: f64,
    /// Shortest time the tile's main loop can take with its pipeline depth and load latency,
    /// seconds; tiles resident together overlap.
    pub latency_s: f64,
}

/// Time of one tile of `cost` on one SM of `gpu`, whose operand loads take `load_latency_s`.
pub fn tile_time(
    gpu: &GpuSpec,
    eff: &EfficiencyParams,
    traits: KernelTraits,
    gather_conflict: f64,
    cost: &TileCost,
    load_latency_s: f64,
) -> TileTime {
    let tensor = cost.mma as f64 * gpu.mma_s(cost.sparse) / eff.tensor_issue;
    let fma = if cost.fma_flops > 0.0 {
        cost.fma_flops / (gpu.cuda_fp16_tflops * 1e12 / f64::from(gpu.sms) * eff.cuda_core)
    } else {
        0.0
    };
    let clock_hz = gpu.boost_clock_mhz * 1e6;
    let smem = (cost.smem_bytes + cost.smem_gather_bytes * gather_conflict.max(1.0))
        / (SMEM_BYTES_PER_CLK * clock_hz);
    let in_flight = f64::from(traits.stages.saturating_sub(1).max(1));
    TileTime {
        pipe_s: (tensor + fma).max(smem),
        latency_s: cost.ksteps as f64 * load_latency_s / in_flight,
    }
}

/// Busy time of one SM running `tiles` together, given each tile's time: one pipeline fill, then
/// the larger of the summed pipe time and the slowest tile's latency-bound loop.
pub fn sm_time(tiles: &[TileTime], fill_s: f64) -> f64 {
    if tiles.is_empty() {
        return 0.0;
    }
    let pipe: f64 = tiles.iter().map(|t| t.pipe_s).sum();
    let latency = tiles.iter().map(|t| t.latency_s).fold(0.0, f64::max);
    fill_s + pipe.max(latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_rows_are_conflict_free_and_one_of_two_selection_conflicts() {
        let dense: Vec<u32> = (0..64).collect();
        assert_eq!(gather_conflict_degree(&dense), 1.0);
        // Keep the even rows of every pair: rows 0, 2, …, 14 → r mod 8 ∈ {0,2,4,6} twice each.
        let even: Vec<u32> = (0..32).map(|i| 2 * i).collect();
        assert_eq!(gather_conflict_degree(&even), 2.0);
        // Alternate which row of a pair is kept so rows i and i+4 of a phase differ: 0,3,4,7,…
        let alt: Vec<u32> = (0..8).map(|i| 2 * i + u32::from(i >= 4)).collect();
        assert_eq!(gather_conflict_degree(&alt), 1.0);
        assert_eq!(gather_conflict_degree(&[]), 1.0);
    }

    #[test]
    fn one_block_per_sm_with_two_stages_is_latency_bound() {
        let fast = TileTime {
            pipe_s: 1.0,
            latency_s: 3.0,
        };
        assert_eq!(sm_time(&[fast], 0.5), 3.5);
        // Four resident blocks hide the latency behind each other's issue time.
        assert_eq!(sm_time(&[fast; 4], 0.5), 4.5);
        assert_eq!(sm_time(&[], 0.5), 0.0);
    }
}
