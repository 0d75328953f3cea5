//! The GPU: its specification (a preset) and the timing of one wave of thread blocks — every SM
//! runs up to `blocks_per_sm` tiles at once; a wave lasts as long as the larger of its busiest
//! SM's time (tile-level efficiency model, `efficiency.rs`: issue, shared memory, pipeline
//! latency) and its DRAM traffic at the memory bandwidth. DRAM traffic is the wave's tiles'
//! operand blocks that are not resident in L2; L2 is approximated as an LRU set of operand blocks
//! (a weight row-block or an activation column-block), filled and aged at wave granularity and
//! bounded by the L2 capacity. Outputs are always written to DRAM.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::efficiency::{EfficiencyParams, TileTime, sm_time, tile_time};
use super::tiling::{KernelPlan, MMA_SLOT_FLOPS};

/// A GPU with (sparse) tensor cores, as its datasheet describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Preset name.
    pub name: String,
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Boost clock, MHz (documentation of the TFLOPS figures).
    pub boost_clock_mhz: f64,
    /// Dense FP16 tensor throughput with FP32 accumulate, TFLOPS.
    pub tensor_dense_tflops: f64,
    /// 2:4-sparse FP16 tensor throughput (dense-equivalent), TFLOPS.
    pub tensor_sparse_tflops: f64,
    /// FP16 throughput of the CUDA cores (non-tensor FMA), TFLOPS.
    pub cuda_fp16_tflops: f64,
    /// Load latency of an L2 hit, ns.
    pub l2_latency_ns: f64,
    /// Load latency of a DRAM access (L2 miss), ns.
    pub dram_latency_ns: f64,
    /// DRAM bandwidth, GB/s.
    pub memory_bandwidth_gbps: f64,
    /// DRAM capacity, bytes.
    pub memory_bytes: u64,
    /// L2 cache, bytes.
    pub l2_bytes: u64,
    /// Shared memory per SM, bytes.
    pub smem_per_sm_bytes: u64,
    /// Resident thread blocks per SM at most (register/thread limit).
    pub max_blocks_per_sm: u32,
    /// Fixed cost of one kernel launch, µs.
    pub launch_overhead_us: f64,
}

impl Validate for GpuSpec {
    fn validate(&self, c: &mut Checks) {
        c.positive("boost_clock_mhz", self.boost_clock_mhz);
        c.positive("tensor_dense_tflops", self.tensor_dense_tflops);
        c.positive("tensor_sparse_tflops", self.tensor_sparse_tflops);
        c.positive("cuda_fp16_tflops", self.cuda_fp16_tflops);
        c.within("l2_latency_ns", self.l2_latency_ns, 1.0, 10_000.0);
        c.within("dram_latency_ns", self.dram_latency_ns, 1.0, 10_000.0);
        c.positive("memory_bandwidth_gbps", self.memory_bandwidth_gbps);
        c.at_least("sms", self.sms, 1);
        c.at_least("memory_bytes", self.memory_bytes, 1);
        c.at_least("l2_bytes", self.l2_bytes, 1);
        c.at_least("smem_per_sm_bytes", self.smem_per_sm_bytes, 1);
        c.at_least("max_blocks_per_sm", self.max_blocks_per_sm, 1);
        c.non_negative("launch_overhead_us", self.launch_overhead_us);
    }
}

impl GpuSpec {
    /// Seconds one MMA issue slot takes on one SM (dense m16n8k16, or sparse m16n8k32).
    pub fn mma_s(&self, sparse: bool) -> f64 {
        let (tflops, flops) = if sparse {
            (self.tensor_sparse_tflops, 2.0 * MMA_SLOT_FLOPS)
        } else {
            (self.tensor_dense_tflops, MMA_SLOT_FLOPS)
        };
        flops / (tflops * 1e12 / f64::from(self.sms))
    }

    /// Thread blocks of `plan` resident per SM (shared memory and the block limit).
    pub fn blocks_per_sm(&self, plan: &KernelPlan) -> u32 {
        let by_smem =
            (self.smem_per_sm_bytes / plan.smem_bytes.max(1)).min(u64::from(u32::MAX)) as u32;
        by_smem.clamp(1, self.max_blocks_per_sm)
    }

    /// Tiles per wave for `plan`.
    pub fn wave_size(&self, plan: &KernelPlan) -> usize {
        (self.sms * self.blocks_per_sm(plan)) as usize
    }
}

/// Key of an operand block in L2: (kernel serial, operand 0 = weight / 1 = activation, group, block).
type BlockKey = (u64, u8, u32, u32);

/// L2 contents: operand blocks with their bytes and the wave that last touched them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct L2State {
    resident: BTreeMap<BlockKey, (f64, u64)>,
    bytes: f64,
    clock: u64,
}

impl L2State {
    /// Touches `key` of `bytes`; returns the DRAM bytes this costs (0 on a hit).
    fn touch(&mut self, key: BlockKey, bytes: f64) -> f64 {
        if let Some(e) = self.resident.get_mut(&key) {
            e.1 = self.clock;
            return 0.0;
        }
        self.resident.insert(key, (bytes, self.clock));
        self.bytes += bytes;
        bytes
    }

    /// Ages the set and evicts least recently used blocks beyond `capacity` bytes.
    fn end_wave(&mut self, capacity: f64) {
        self.clock += 1;
        while self.bytes > capacity {
            let Some((&k, &(b, _))) = self.resident.iter().min_by_key(|(_, (_, t))| *t) else {
                break;
            };
            self.resident.remove(&k);
            self.bytes -= b;
        }
    }
}

/// Timing of one wave.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WaveTiming {
    /// Wave duration, seconds.
    pub time_s: f64,
    /// Busiest SM's time (issue, shared memory or pipeline latency), seconds.
    pub tensor_s: f64,
    /// DRAM time, seconds.
    pub memory_s: f64,
    /// DRAM bytes moved.
    pub dram_bytes: f64,
}

/// Times the wave of `plan`'s tiles `range` (kernel number `serial`; tile i runs on SM i mod
/// sms), updating L2. A tile whose operand blocks all hit in L2 waits the L2 latency per load,
/// otherwise the DRAM latency.
pub fn time_wave(
    spec: &GpuSpec,
    eff: &EfficiencyParams,
    serial: u64,
    plan: &KernelPlan,
    range: std::ops::Range<usize>,
    l2: &mut L2State,
) -> WaveTiming {
    let sms = spec.sms as usize;
    let tiles = &plan.tiles[range];
    let mut per_sm: Vec<Vec<TileTime>> = vec![Vec::new(); sms.min(tiles.len()).max(1)];
    let mut fill = vec![0.0f64; per_sm.len()];
    let mut dram = 0.0;
    for (i, t) in tiles.iter().enumerate() {
        let miss = l2.touch((serial, 0, t.group, t.row_block), t.cost.a_bytes)
            + l2.touch((serial, 1, t.group, t.col_block), t.cost.b_bytes);
        dram += miss + t.cost.c_bytes;
        let latency_s = if miss > 0.0 {
            spec.dram_latency_ns
        } else {
            spec.l2_latency_ns
        } * 1e-9;
        let sm = i % sms;
        per_sm[sm].push(tile_time(
            spec,
            eff,
            plan.traits,
            plan.gather_conflict,
            &t.cost,
            latency_s,
        ));
        fill[sm] = fill[sm].max(latency_s);
    }
    l2.end_wave(spec.l2_bytes as f64);
    let tensor_s = per_sm
        .iter()
        .zip(&fill)
        .map(|(t, &f)| sm_time(t, f))
        .fold(0.0, f64::max);
    let memory_s = dram / (spec.memory_bandwidth_gbps * 1e9);
    WaveTiming {
        time_s: tensor_s.max(memory_s),
        tensor_s,
        memory_s,
        dram_bytes: dram,
    }
}

/// Time of `plan` alone on a cold L2: launch overhead plus its waves in order.
pub fn plan_time(spec: &GpuSpec, eff: &EfficiencyParams, plan: &KernelPlan) -> f64 {
    let mut l2 = L2State::default();
    let wave = spec.wave_size(plan).max(1);
    let tiles = plan.tiles.len();
    (0..tiles)
        .step_by(wave)
        .map(|s| time_wave(spec, eff, 0, plan, s..(s + wave).min(tiles), &mut l2).time_s)
        .sum::<f64>()
        + spec.launch_overhead_us * 1e-6
}

/// The fastest of `candidates` by [`plan_time`] (a library's heuristics or autotuning pick the
/// tile shape per problem); the first on ties, `None` when empty.
pub fn fastest(
    spec: &GpuSpec,
    eff: &EfficiencyParams,
    candidates: Vec<KernelPlan>,
) -> Option<KernelPlan> {
    candidates
        .into_iter()
        .map(|p| (plan_time(spec, eff, &p), p))
        .reduce(|a, b| if b.0 < a.0 { b } else { a })
        .map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiling::{Method, SparsityFormat, gemm_plan};
    use presets::GPU;

    /// A built-in GPU preset.
    pub fn gpu(name: &str) -> GpuSpec {
        let text = GPU.iter().find(|(n, _)| *n == name).expect("preset").1;
        serde_norway::from_str(text).expect("parses")
    }

    #[test]
    fn presets_parse_validate_and_tflops_follow_from_clock_and_sms() {
        for (name, _) in GPU {
            let g = gpu(name);
            assert_eq!(g.name, *name);
            assert!(Checks::of(&g).is_empty(), "{name}");
            assert!(
                (g.tensor_sparse_tflops / g.tensor_dense_tflops - 2.0).abs() < 0.01,
                "{name}"
            );
        }
        // 4070 Super: 56 SM × 2.475 GHz × 512 FLOP/clk.
        let g = gpu("rtx-4070-super");
        assert!((56.0 * 2.475e9 * 512.0 / 1e12 - g.tensor_dense_tflops).abs() < 0.1);
    }

    #[test]
    fn one_sparse_mma_takes_one_dense_slot_at_twice_the_rate() {
        let g = gpu("rtx-4090");
        assert!((g.mma_s(true) - g.mma_s(false)).abs() < 1e-18);
    }

    #[test]
    fn l2_hits_cut_dram_traffic_within_a_wave() {
        let g = gpu("rtx-4070-super");
        let p = gemm_plan(
            "d",
            Method::Dense,
            &SparsityFormat::default(),
            1024,
            1024,
            &[4096],
        );
        let n = g.wave_size(&p);
        let wave = &p.tiles[..n];
        let t = time_wave(
            &g,
            &EfficiencyParams::default(),
            0,
            &p,
            0..n,
            &mut L2State::default(),
        );
        let no_reuse: f64 = wave
            .iter()
            .map(|t| t.cost.a_bytes + t.cost.b_bytes + t.cost.c_bytes)
            .sum();
        assert!(
            t.dram_bytes < 0.6 * no_reuse,
            "{} vs {}",
            t.dram_bytes,
            no_reuse
        );
        assert!(t.time_s > 0.0);
    }

    #[test]
    fn a_small_problem_picks_smaller_tiles_to_fill_the_sms() {
        let g = gpu("rtx-4070-super");
        let eff = EfficiencyParams::default();
        let f = SparsityFormat::default();
        let plans = |m: usize, n: usize| {
            crate::tiling::LIBRARY_TILES
                .iter()
                .map(|&t| {
                    crate::tiling::gemm_plan_tiled("d", (Method::Dense, &f), (m, 4096, &[n]), t)
                })
                .collect::<Vec<_>>()
        };
        // 1024 × 1024: 64 tiles of 128×128 leave 56-SM waves half empty; smaller tiles win.
        let small = fastest(&g, &eff, plans(1024, 1024)).unwrap();
        assert!(small.tiles.len() > 64, "{}", small.tiles.len());
        let t = |p: &KernelPlan| plan_time(&g, &eff, p);
        assert!(t(&small) < t(&plans(1024, 1024)[0]));
        assert!(fastest(&g, &eff, vec![]).is_none());
    }
}
