//! Bench of the `sptc` family: for each compared method, a driver launches the workload's kernels
//! on a GPU model (waves of thread blocks as engine events); the runs share one routing stream,
//! so every method executes the same token→expert assignment. Emits per-method kernel/layer
//! times, TFLOPS, tokens/s, memory and maximum batch, and Samoyeds' speedups over the others.
//!
//! One bench per method ([`simulate`]):
//!
//! ```text
//!   ┌────────────┐ launch → launch        ┌──────────────┐
//!   │   Driver   ├───────────────────────►│    Device    │
//!   │  "driver"  │◄───────────────────────┤    "gpu"     │
//!   └──┬──────┬──┘ done → kernel_done     └──────────────┘
//!      │      │ routed
//!      │      └─────────► Routed queue (token→expert assignment of each layer)
//!      │ finished
//!      └────────────────► Finished queue (kernel start/end times)
//! ```

use nexosim::ports::{EventSinkReader, SinkState, event_queue};
use nexosim::simulation::Mailbox;
use sim::engine::{self, T0};
use sim::estimate::ResourceEstimate;
use sim::experiment::{Experiment, PresetSlot, RunContext, RunError, RunOutput};

use super::device::Device;
use super::driver::{Driver, Finished, ModelWork, Routed, Work};
use super::gpu::fastest;
use super::layer::{Part, Step};
use super::memory::{Batch, footprint, max_batch};
use super::params::{KernelWorkload, ModelWorkload, Phase, SptcParams, Workload};
use super::sample::{self, check_block};
use super::tiling::{LIBRARY_TILES, Method, UNSTRUCTURED_DENSITY, gemm_plan, gemm_plan_tiled};

/// The Samoyeds experiment.
pub struct SptcExperiment;

/// What one method's simulation produced.
struct Trace {
    kernels: Vec<Finished>,
    routed: Vec<Routed>,
}

/// Runs `work` on the GPU of `p` and collects the finished kernels and routings.
fn simulate(p: &SptcParams, work: Work, ctx: &RunContext) -> Result<Trace, RunError> {
    let mut driver = Driver::new(work, ctx.rng("sptc/router"), ctx.rng("sptc/sample"));
    let mut device = Device::new(p.gpu.clone(), p.efficiency);
    let (dm, gm) = (Mailbox::new(), Mailbox::new());
    driver.launch.connect(Device::launch, &gm);
    device.done.connect(Driver::kernel_done, &dm);
    let (ksink, mut kernels) = event_queue::<Finished>(SinkState::Enabled);
    let (rsink, mut routed) = event_queue::<Routed>(SinkState::Enabled);
    driver.finished.connect_sink(ksink);
    driver.routed.connect_sink(rsink);
    let mut simu = engine::bench()
        .add_model(driver, dm, "driver")
        .add_model(device, gm, "gpu")
        .init(T0)?;
    simu.run()?;
    let mut t = Trace {
        kernels: Vec::new(),
        routed: Vec::new(),
    };
    while let Some(k) = kernels.try_read() {
        t.kernels.push(k);
    }
    while let Some(r) = routed.try_read() {
        t.routed.push(r);
    }
    Ok(t)
}

/// Emits `speedup_{prefix}samoyeds_vs_{other}` = other / samoyeds for every other method.
fn speedups(out: &mut RunOutput, prefix: &str, values: &[(Method, f64)], higher_is_better: bool) {
    let Some(&(_, s)) = values.iter().find(|(m, _)| *m == Method::Samoyeds) else {
        return;
    };
    let mut best: Option<f64> = None;
    for &(m, v) in values.iter().filter(|(m, _)| *m != Method::Samoyeds) {
        let r = if higher_is_better { s / v } else { v / s };
        out.metric(format!("{prefix}_samoyeds_vs_{}", m.key()), r);
        best = Some(best.map_or(r, |b: f64| b.min(r)));
    }
    if let Some(b) = best {
        out.metric(format!("{prefix}_samoyeds_vs_best"), b);
    }
}

/// Records `method`'s kernels as slices on `<method>/gpu` (one GPU stream per compared method, each
/// starting at zero), named by the kernel, with its layer, waves, DRAM bytes and FLOPs.
fn timeline(method: Method, kernels: &[Finished], out: &mut RunOutput) {
    if !out.trace.is_on() {
        return;
    }
    let track = format!("{}/gpu", method.key());
    for k in kernels {
        let d = &k.done;
        out.trace.slice_with(
            &track,
            &d.name,
            d.start_s,
            d.end_s - d.start_s,
            &[
                ("layer", f64::from(k.layer)),
                ("waves", d.waves as f64),
                ("dram_bytes", d.dram_bytes),
                ("flops", d.stats.flops),
            ],
        );
    }
}

fn run_kernel(p: &SptcParams, w: &KernelWorkload, ctx: &RunContext) -> Result<RunOutput, RunError> {
    let mut out = RunOutput {
        trace: ctx.tracer(),
        ..RunOutput::default()
    };
    let mut times = Vec::new();
    let flops = 2.0 * (w.m * w.n * w.k) as f64;
    // The kernel's n routed tokens, sampled block checked numerically against dense.
    let routed: Vec<u32> = (0..w.n.min(sample::TOKEN_SPACE) as u32).collect();
    let check = check_block(&routed, w.k, &p.format, &mut ctx.rng("sptc/sample"));
    out.metric("sample_max_abs_err", check.max_abs_err)
        .metric("gather_conflict_degree", check.conflict_degree);
    for &m in &p.methods {
        let name = format!("{}.gemm", m.key());
        // cuBLAS and cuSPARSELt pick their tile per shape; the other kernels ship one.
        let tuned = matches!(m, Method::Dense | Method::WeightSparse).then(|| {
            let menu = LIBRARY_TILES
                .iter()
                .map(|&t| gemm_plan_tiled(&name, (m, &p.format), (w.m, w.k, &[w.n]), t))
                .collect();
            fastest(&p.gpu, &p.efficiency, menu)
        });
        let mut plan = tuned
            .flatten()
            .unwrap_or_else(|| gemm_plan(&name, m, &p.format, w.m, w.k, &[w.n]));
        if m.vector_selected() {
            plan.gather_conflict = check.conflict_degree;
        }
        let trace = simulate(p, Work::Kernels(vec![plan]), ctx)?;
        timeline(m, &trace.kernels, &mut out);
        let k = trace
            .kernels
            .first()
            .ok_or_else(|| RunError::Model("kernel did not finish".into()))?;
        let time = k.done.end_s - k.done.start_s;
        let key = m.key();
        out.metric(format!("{key}_time_s"), time)
            .metric(format!("{key}_tflops"), flops / time / 1e12)
            .metric(format!("{key}_waves"), k.done.waves as f64)
            .metric(format!("{key}_tiles"), k.done.stats.tiles as f64)
            .metric(
                format!("{key}_mma"),
                (k.done.stats.dense_mma + k.done.stats.sparse_mma) as f64,
            )
            .metric(format!("{key}_dram_bytes"), k.done.dram_bytes)
            .metric(
                format!("{key}_compute_bound_frac"),
                k.done.compute_bound_waves as f64 / k.done.waves.max(1) as f64,
            );
        // Fraction of the executing unit's peak: tensor cores for dense, CUDA cores for Sputnik.
        match m {
            Method::Dense => {
                out.metric(
                    "dense_peak_frac",
                    flops / time / (p.gpu.tensor_dense_tflops * 1e12),
                );
            }
            Method::Sputnik => {
                out.metric(
                    "sputnik_peak_frac",
                    UNSTRUCTURED_DENSITY * flops / time / (p.gpu.cuda_fp16_tflops * 1e12),
                );
            }
            _ => {}
        }
        times.push((m, time));
    }
    speedups(&mut out, "speedup", &times, false);
    Ok(out)
}

fn run_model(p: &SptcParams, w: &ModelWorkload, ctx: &RunContext) -> Result<RunOutput, RunError> {
    let llm = p
        .llm
        .as_ref()
        .ok_or_else(|| RunError::Model("llm missing".into()))?;
    let step = match w.phase {
        Phase::Prefill => Step {
            seqs: w.batch,
            q_len: w.seq_len,
            ctx: w.seq_len,
        },
        Phase::Decode => Step {
            seqs: w.batch,
            q_len: 1,
            ctx: w.seq_len,
        },
    };
    let tokens = step.tokens();
    let deployed = if w.deployed_layers == 0 {
        llm.layers
    } else {
        w.deployed_layers
    };
    let capacity = p.gpu.memory_bytes.saturating_sub(w.reserved_bytes) as f64;
    let mut out = RunOutput {
        trace: ctx.tracer(),
        ..RunOutput::default()
    };
    let (mut moe_t, mut layer_t, mut tps, mut batch) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut imbalance = 0.0;
    for &m in &p.methods {
        let work = ModelWork {
            llm: llm.clone(),
            method: m,
            fmt: p.format,
            step,
            layers: w.simulated_layers,
            router: w.router,
        };
        let trace = simulate(p, Work::Model(work), ctx)?;
        timeline(m, &trace.kernels, &mut out);
        let layers = f64::from(w.simulated_layers);
        let part_s = |part: Part| -> f64 {
            trace
                .kernels
                .iter()
                .filter(|k| k.part == part)
                .map(|k| k.done.end_s - k.done.start_s)
                .sum::<f64>()
                / layers
        };
        let (attn, moe) = (part_s(Part::Attention), part_s(Part::Moe));
        let layer = attn + moe;
        let model_tps = tokens as f64 / (layer * f64::from(llm.layers));
        // Expert load per token, from the routing of the simulated layers (mean over layers).
        let experts = llm.moe.as_ref().map_or(0, |m| m.experts as usize);
        let mut load = vec![0.0; experts];
        for r in &trace.routed {
            let mut c = r.counts.clone();
            c.sort_unstable_by(|a, b| b.cmp(a));
            for (l, n) in load.iter_mut().zip(c) {
                *l += n as f64 / tokens as f64 / trace.routed.len() as f64;
            }
        }
        if m == p.methods[0] {
            let checks = trace.routed.iter().map(|r| r.check);
            out.metric(
                "sample_max_abs_err",
                checks.clone().map(|c| c.max_abs_err).fold(0.0, f64::max),
            )
            .metric(
                "gather_conflict_degree",
                checks.map(|c| c.conflict_degree).sum::<f64>() / trace.routed.len().max(1) as f64,
            );
            imbalance = trace
                .routed
                .iter()
                .map(|r| {
                    let mean = r.counts.iter().sum::<usize>() as f64 / r.counts.len().max(1) as f64;
                    *r.counts.iter().max().unwrap_or(&0) as f64 / mean.max(1e-9)
                })
                .sum::<f64>()
                / trace.routed.len().max(1) as f64;
        }
        let per_seq = step.q_len;
        let fp = |seqs: usize| {
            let batch = Batch {
                seqs,
                seq_len: w.seq_len,
                tokens: seqs * per_seq,
            };
            footprint(llm, m, &p.format, deployed, batch, &load)
        };
        let now = fp(w.batch);
        let best = max_batch(capacity, w.max_batch_limit, |b| fp(b).total() <= capacity);
        let key = m.key();
        let flops: f64 = trace
            .kernels
            .iter()
            .filter(|k| k.part == Part::Moe)
            .map(|k| k.done.stats.flops)
            .sum::<f64>()
            / layers;
        out.metric(format!("{key}_moe_time_s"), moe)
            .metric(format!("{key}_attention_time_s"), attn)
            .metric(format!("{key}_layer_time_s"), layer)
            .metric(format!("{key}_moe_tflops"), flops / moe / 1e12)
            .metric(
                format!("{key}_kernels_per_layer"),
                trace.kernels.len() as f64 / layers,
            )
            .metric(format!("{key}_tokens_per_s"), model_tps)
            .metric(format!("{key}_weights_bytes"), now.weights)
            .metric(format!("{key}_kv_bytes"), now.kv)
            .metric(format!("{key}_activation_bytes"), now.activations)
            .metric(
                format!("{key}_fits"),
                if now.total() <= capacity { 1.0 } else { 0.0 },
            )
            .metric(format!("{key}_max_batch"), best as f64);
        moe_t.push((m, moe));
        layer_t.push((m, layer));
        tps.push((m, model_tps));
        batch.push((m, best.max(1) as f64));
    }
    out.metric("tokens", tokens as f64)
        .metric("router_imbalance", imbalance);
    speedups(&mut out, "moe_speedup", &moe_t, false);
    speedups(&mut out, "layer_speedup", &layer_t, false);
    speedups(&mut out, "batch_gain", &batch, true);
    Ok(out)
}

impl Experiment for SptcExperiment {
    type Params = SptcParams;
    const NAME: &'static str = "sptc";
    const DESCRIPTION: &'static str = "Samoyeds: dual-side structured-sparse MoE kernels on GPUs with sparse tensor cores vs dense, 2:4 weight-only and MegaBlocks-style kernels";
    const NO_CHECKPOINTS_WHY: &'static str = "its runs are short batched numerics (routing, tile plans and kernel timings computed up front, then a few kernel-level engine runs of seconds), with nothing to continue mid-run; an interrupted sweep resumes run by run with --resume";
    const PRESETS: &'static [PresetSlot] = &[
        PresetSlot {
            key: "gpu",
            builtin: presets::GPU,
        },
        PresetSlot {
            key: "llm",
            builtin: presets::LLM,
        },
    ];

    /// Per method, a kernel is simulated tile by tile: ≈ `(m/64)·(n/64)` output tiles of ≈ 64
    /// bytes each, stepped `k/32` times (one MMA step per 32 of `k`; tile sizes estimated from the
    /// kernel's smallest configuration). A model step routes `batch · seq_len` tokens through a
    /// `router.dim`-wide gate to every expert in each simulated layer (4 bytes per logit).
    fn estimate(&self, p: &SptcParams) -> ResourceEstimate {
        let methods = p.methods.len().max(1) as f64;
        match &p.workload {
            Workload::Kernel(w) => {
                let tiles = (w.m as f64 / 64.0).ceil() * (w.n as f64 / 64.0).ceil();
                ResourceEstimate::default()
                    .memory("workload.kernel.m", methods * tiles * 64.0)
                    .work(
                        "workload.kernel.k",
                        methods * tiles * (w.k as f64 / 32.0).ceil(),
                    )
            }
            Workload::Model(w) => {
                let tokens = w.batch as f64
                    * if w.phase == Phase::Prefill {
                        w.seq_len as f64
                    } else {
                        1.0
                    };
                let experts = p
                    .llm
                    .as_ref()
                    .and_then(|l| l.moe.as_ref())
                    .map_or(1.0, |m| f64::from(m.experts));
                let layers = f64::from(w.simulated_layers);
                ResourceEstimate::default()
                    .memory("workload.model.batch", tokens * experts * 4.0)
                    .work(
                        "workload.model.batch",
                        methods * layers * tokens * experts * w.router.dim as f64,
                    )
            }
        }
    }

    fn run(&self, p: &SptcParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        match &p.workload {
            Workload::Kernel(w) => run_kernel(p, w, ctx),
            Workload::Model(w) => run_model(p, w, ctx),
        }
    }
}
