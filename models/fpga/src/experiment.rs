//! Bench of the `fpga` family: the Transformer program runs twice in the engine — on the FPGA
//! accelerator (sequencer → systolic array / nonlinear unit, weights over the off-chip link) and
//! on the GPU baseline (the same sequencer feeding one in-order kernel stream) — and the nonlinear
//! hardware of the chosen design is costed.
//!
//! One bench ([`execute`]) serves both runs (the GPU run has no DMA: weights resident):
//!
//! ```text
//!                    to_array → arrive     ┌────────────────────┐ done → done
//!               ┌─────────────────────────►│  Server "array"    ├──────────────┐
//!               │                          └────────────────────┘              │
//!   ┌───────────┴─┐ to_nonlinear → arrive  ┌────────────────────┐ done → done  │
//!   │  Sequencer  ├───────────────────────►│ Server "nonlinear" ├────────────┐ │
//!   │ "sequencer" │◄───────────────────────┴────────────────────┴────────────┴─┘
//!   │             │ dma → send             ┌────────────────────┐
//!   │             ├───────────────────────►│    Link "dram"     │
//!   │             │◄───────────────────────┤                    │
//!   └─────────────┘ delivered → loaded     └────────────────────┘
//!
//!   both servers' done ──► Completed queue (task finish times)
//! ```

use nexosim::ports::{EventSinkReader, SinkState, event_queue};
use nexosim::simulation::Mailbox;
use sim::components::link::Link;
use sim::components::server::{Completed, Server};
use sim::engine::{self, T0};
use sim::estimate::ResourceEstimate;
use sim::experiment::{Experiment, PresetSlot, RunContext, RunError, RunOutput};
use sim::trace::Trace;

use super::cost;
use super::ops::Prec;
use super::params::{FpgaParams, LmParams, QualityParams, WeightsChoice};
use super::platform::{array_dsp, fpga_step, gpu_kernel_s};
use super::quality::{Nonlinear, Variant, evaluate};
use super::sequencer::{Sequencer, Step};
use super::workload::{Kind, Task, nonlinear_ops, program};
use minilm::{self, MiniLm, Tokenizer, sentences, tokenizer::MAX_SEQ_LEN};

/// Off-chip access latency added to each weight transfer, seconds (estimate: ~100 ns DDR4 page
/// miss + controller, e.g. UG1182-class boards).
const DRAM_LATENCY_S: f64 = 100e-9;

/// GPU baseline precision: FP16 (PyTorch-style inference of the paper's GPU baselines).
const GPU_DTYPE_BITS: u32 = 16;

/// QUARK (ICCAD'25) and transformer accelerators on FPGA vs a GPU.
pub struct FpgaExperiment;

/// Runs `steps` through a sequencer, returning (task id, engine, start, finish) in finish order.
/// `with_dma`: weights stream over an off-chip link of `gbps`; otherwise they are assumed resident.
pub(super) fn execute(
    steps: Vec<Step>,
    dma_gbps: Option<f64>,
) -> Result<Vec<(Completed, bool)>, RunError> {
    let on_array: Vec<bool> = steps.iter().map(|s| s.on_array).collect();
    let steps = match dma_gbps {
        Some(_) => steps,
        None => steps
            .into_iter()
            .map(|s| Step {
                weight_bytes: 0,
                ..s
            })
            .collect(),
    };
    let mut seq = Sequencer::new(steps);
    let mut array = Server::new(1);
    let mut nonlinear = Server::new(1);
    let mut link = Link::new(DRAM_LATENCY_S, dma_gbps.unwrap_or(1.0) * 1e9);
    let (seq_mb, arr_mb, nl_mb, link_mb) = (
        Mailbox::new(),
        Mailbox::new(),
        Mailbox::new(),
        Mailbox::new(),
    );
    seq.to_array.connect(Server::arrive, &arr_mb);
    seq.to_nonlinear.connect(Server::arrive, &nl_mb);
    seq.dma.connect(Link::send, &link_mb);
    array.done.connect(Sequencer::done, &seq_mb);
    nonlinear.done.connect(Sequencer::done, &seq_mb);
    link.delivered.connect(Sequencer::loaded, &seq_mb);
    let (sink, mut done) = event_queue::<Completed>(SinkState::Enabled);
    array.done.connect_sink(sink.clone());
    nonlinear.done.connect_sink(sink);
    let mut simu = engine::bench()
        .add_model(seq, seq_mb, "sequencer")
        .add_model(array, arr_mb, "array")
        .add_model(nonlinear, nl_mb, "nonlinear")
        .add_model(link, link_mb, "dram")
        .init(T0)?;
    simu.run()?;
    let mut out = Vec::new();
    while let Some(c) = done.try_read() {
        let a = on_array[c.id as usize];
        out.push((c, a));
    }
    if out.len() != on_array.len() {
        return Err(RunError::Model(format!(
            "only {} of {} tasks completed",
            out.len(),
            on_array.len()
        )));
    }
    Ok(out)
}

impl Experiment for FpgaExperiment {
    type Params = FpgaParams;
    const NAME: &'static str = "fpga";
    const DESCRIPTION: &'static str = "QUARK shared nonlinear circuits on an FPGA Transformer accelerator vs separate units and a GPU; SpecQuant W4A4 quality";
    const NO_CHECKPOINTS_WHY: &'static str = "its runs are batched numerics (quantizing and evaluating real weights, then one short operator-pipeline simulation) with no event loop to save mid-run; an interrupted sweep resumes run by run with --resume";
    const PRESETS: &'static [PresetSlot] = &[
        PresetSlot {
            key: "fpga",
            builtin: presets::FPGA,
        },
        PresetSlot {
            key: "gpu",
            builtin: presets::GPU_BASELINE,
        },
        PresetSlot {
            key: "workload",
            builtin: presets::FPGA_WORKLOAD,
        },
    ];

    /// Memory: ≈ 12 tasks per layer (≈ 128 bytes each with its completion) for the FPGA and the
    /// GPU; with `quality`, all-MiniLM-L6-v2's 22.7 M f32 weights (model card) and each sentence's
    /// embeddings. Work: two events per task, and per quality sentence two MiniLM forwards of
    /// ≈ 2 · 22.7 M operations per token over ≈ 64 tokens (an estimate of ShareGPT prompt length
    /// after WordPiece, capped at 128).
    fn estimate(&self, p: &FpgaParams) -> ResourceEstimate {
        let tasks = 12.0 * f64::from(p.workload.layers);
        let mut e = ResourceEstimate::default()
            .memory("workload.layers", 2.0 * tasks * 128.0)
            .work("workload.layers", 2.0 * tasks);
        if let Some(q) = &p.quality {
            const MINILM_PARAMS: f64 = 22.7e6;
            let sentences = f64::from(q.sentences);
            e = e
                .memory("quality", MINILM_PARAMS * 4.0)
                .memory("quality.sentences", sentences * 2.0 * 384.0 * 4.0)
                .work(
                    "quality.sentences",
                    sentences * 2.0 * 2.0 * MINILM_PARAMS * 64.0,
                );
        }
        e
    }

    fn run(&self, p: &FpgaParams, ctx: &RunContext) -> Result<RunOutput, RunError> {
        let prec = Prec { bits: p.bits };
        let ops = nonlinear_ops(&p.workload);
        let nl = cost::calibrated_resources(p.design, &ops, prec, p.lanes, !p.separate_units);
        let dsp_used = nl.dsp + array_dsp(p);
        if dsp_used > p.fpga.dsp || nl.lut > p.fpga.lut || nl.bram > p.fpga.bram36 {
            return Err(RunError::Model(format!(
                "design does not fit {}: {:.0} DSP (board {}), {:.0} nonlinear LUT (board {}), {:.0} BRAM36 (board {}); shrink array_rows/array_cols or lanes",
                p.fpga.name, dsp_used, p.fpga.dsp, nl.lut, p.fpga.lut, nl.bram, p.fpga.bram36
            )));
        }
        let tasks: Vec<Task> = program(&p.workload);
        let fpga_steps: Vec<Step> = tasks.iter().map(|t| fpga_step(p, t)).collect();
        let gpu_steps: Vec<Step> = tasks
            .iter()
            .map(|t| Step {
                on_array: true,
                service_s: gpu_kernel_s(&p.gpu, t, GPU_DTYPE_BITS),
                weight_bytes: 0,
            })
            .collect();
        let fpga_done = execute(fpga_steps, Some(p.fpga.offchip_gbps))?;
        let gpu_done = execute(gpu_steps, None)?;

        let span = |d: &[(Completed, bool)]| d.iter().map(|(c, _)| c.finish_s).fold(0.0, f64::max);
        let busy = |d: &[(Completed, bool)], nonlinear: bool| {
            d.iter()
                .filter(|(c, _)| {
                    matches!(tasks[c.id as usize].kind, Kind::Nonlinear { .. }) == nonlinear
                })
                .map(|(c, _)| c.finish_s - c.start_s)
                .sum::<f64>()
        };
        let (fpga_s, gpu_s) = (span(&fpga_done), span(&gpu_done));
        let mut out = RunOutput::default();
        out.metric("fpga_e2e_ms", fpga_s * 1e3)
            .metric("gpu_e2e_ms", gpu_s * 1e3)
            .metric("speedup_vs_gpu", gpu_s / fpga_s)
            .metric("fpga_nonlinear_ms", busy(&fpga_done, true) * 1e3)
            .metric("fpga_matmul_ms", busy(&fpga_done, false) * 1e3)
            .metric("gpu_nonlinear_ms", busy(&gpu_done, true) * 1e3)
            .metric("gpu_matmul_ms", busy(&gpu_done, false) * 1e3)
            .metric("fpga_nonlinear_fraction", busy(&fpga_done, true) / fpga_s)
            .metric(
                "fpga_stall_ms",
                (fpga_s - busy(&fpga_done, true) - busy(&fpga_done, false)) * 1e3,
            )
            .metric("nl_lut", nl.lut)
            .metric("nl_ff", nl.ff)
            .metric("nl_dsp", nl.dsp)
            .metric("nl_bram", nl.bram)
            .metric("array_dsp", array_dsp(p))
            .metric("dsp_utilization", dsp_used / p.fpga.dsp)
            .metric("tasks", tasks.len() as f64);
        let bert_ops =
            ops.len() == cost::BERT_OPS.len() && cost::BERT_OPS.iter().all(|o| ops.contains(o));
        if bert_ops {
            // The synthesized design (yosys, committed counts), beside the calibrated model.
            let synth = crate::rtl::synth::design_bert(p.design, prec, p.lanes, !p.separate_units);
            if let Some(r) = synth {
                out.metric("rtl_lut", r.lut)
                    .metric("rtl_ff", r.ff)
                    .metric("rtl_dsp", r.dsp)
                    .metric("rtl_bram", r.bram);
            }
        }
        for &op in &ops {
            let u = cost::timing(p.design, op, prec, p.lanes);
            out.metric(format!("{}_depth_cycles", op_name(op)), f64::from(u.depth));
            let t: f64 = tasks
                .iter()
                .zip(&fpga_done_sorted(&fpga_done))
                .filter(|(t, _)| matches!(t.kind, Kind::Nonlinear { op: o, .. } if o == op))
                .map(|(_, d)| d)
                .sum();
            out.metric(format!("fpga_{}_us", op_name(op)), t * 1e6);
        }
        for (c, on_array) in &fpga_done {
            let engine = if *on_array { "array" } else { "nonlinear" };
            out.sample(c.finish_s, engine, "task_busy_s", c.finish_s - c.start_s);
        }
        if let Some(q) = &p.quality {
            quality_metrics(p, q, ctx, &mut out)?;
        }
        if let Some(q) = &p.lm {
            lm_metrics(p, q, ctx, &mut out)?;
        }
        out.trace = ctx.tracer();
        timeline(&tasks, "fpga", &fpga_done, &mut out.trace);
        timeline(&tasks, "gpu", &gpu_done, &mut out.trace);
        Ok(out)
    }
}

/// The operator pipeline of one run on `device` (`fpga` or `gpu`): one slice per task on
/// `<device>/array` (matmuls; every GPU kernel) or `<device>/nonlinear` (the nonlinear unit), named
/// by its layer and operator (`L3 matmul`, `L3 softmax`), with its MACs or elements as arguments.
fn timeline(tasks: &[Task], device: &str, done: &[(Completed, bool)], trace: &mut Trace) {
    if !trace.is_on() {
        return;
    }
    let (array, nonlinear) = (format!("{device}/array"), format!("{device}/nonlinear"));
    for (c, on_array) in done {
        let Some(t) = tasks.get(c.id as usize) else {
            continue;
        };
        let (name, arg) = match t.kind {
            Kind::Matmul { .. } => (format!("L{} matmul", t.layer), ("macs", t.macs() as f64)),
            Kind::Nonlinear { op, rows, len } => (
                format!("L{} {}", t.layer, op_name(op)),
                ("elements", (rows * len) as f64),
            ),
        };
        let track = if *on_array { &array } else { &nonlinear };
        trace.slice_with(track, &name, c.start_s, c.finish_s - c.start_s, &[arg]);
    }
}

/// The quality study: the real all-MiniLM-L6-v2 if found (and `weights: auto`), else the stand-in,
/// on the real ShareGPT sentences.
fn quality_metrics(
    p: &FpgaParams,
    q: &QualityParams,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<(), RunError> {
    let layers = q.layers as usize;
    let real =
        match (q.weights, minilm::locate()) {
            (WeightsChoice::Auto, Some(dir)) => Some(MiniLm::load(&dir).map_err(|e| {
                RunError::Model(format!("loading MiniLM from {}: {e}", dir.display()))
            })?),
            (WeightsChoice::Auto, None) => {
                eprintln!(
                    "fpga: all-MiniLM-L6-v2 weights not found (scripts/fetch-minilm.sh or ${}): \
                 quality metrics come from the random-weight stand-in (real_weights = 0)",
                    minilm::weights::DIR_ENV
                );
                None
            }
            (WeightsChoice::Random, _) => None,
        };
    let is_real = real.is_some();
    let mut model = real.unwrap_or_else(|| {
        MiniLm::random_with_outliers(
            minilm::Dims::minilm(layers),
            q.outlier_fraction,
            &mut ctx.rng("fpga/minilm-weights"),
        )
    });
    model.truncate_layers(layers);
    let tok = Tokenizer::minilm();
    let enc =
        |s: &[&str]| -> Vec<Vec<u32>> { s.iter().map(|t| tok.encode(t, MAX_SEQ_LEN)).collect() };
    let sents = enc(&sentences::eval(q.sentences as usize));
    let calib = enc(&sentences::calibration());
    let variant = Variant {
        ops: (!q.exact_nonlinear).then(|| Nonlinear {
            fixed: q.fixed_ops,
            norm_output: q.norm_output,
            norm_input_bits: q.norm_input_bits.unwrap_or(p.bits),
            norm_input_block: q.norm_input_block.map(|b| b as usize),
            ..Nonlinear::new(p.design, Prec { bits: p.bits })
        }),
        quant: Some(q),
    };
    let r = evaluate(&model, &sents, &calib, &variant);
    out.metric("real_weights", f64::from(u8::from(is_real)))
        .metric("quality_sentences", sents.len() as f64)
        .metric("cosine_similarity", r.agreement.cosine_mean)
        .metric("cosine_min", r.agreement.cosine_min)
        .metric("nn_agreement", r.agreement.nn_agreement);
    if let Some(m) = r.memory {
        out.metric("linear_weight_bytes", m.bytes)
            .metric("weight_compression", m.fp32_bytes / m.bytes)
            .metric("fft_bins_kept", m.fft_bins)
            .metric("weight_sqnr_db", m.sqnr_db);
    }
    Ok(())
}

/// The decoder study: evaluation chunk = replication index, against the cached reference.
fn lm_metrics(
    p: &FpgaParams,
    q: &LmParams,
    ctx: &RunContext,
    out: &mut RunOutput,
) -> Result<(), RunError> {
    let src = crate::lm_data::source().map_err(RunError::Model)?;
    let chunk = src
        .chunk(
            q.window as usize,
            q.calib_tokens as usize,
            q.eval_tokens as usize,
            ctx.replication as usize,
        )
        .map_err(RunError::Model)?;
    let ops = crate::lm::nonlinear(p.design, Prec { bits: p.bits });
    let r = crate::lm::evaluate(
        &src.model,
        &chunk.base,
        &chunk.calib,
        q,
        Some(ops),
        &mut ctx.rng("fpga/lm-rotation"),
    )
    .map_err(RunError::Model)?;
    out.metric("real_weights", f64::from(u8::from(src.real)))
        .metric("eval_tokens", r.quality.tokens as f64)
        .metric("ppl", r.quality.perplexity())
        .metric("ppl_reference", r.reference.perplexity())
        .metric("ppl_ratio", r.ppl_ratio())
        .metric("kl_nats", r.quality.mean_kl())
        .metric("top1_agreement", r.quality.top1())
        .metric("bits_per_weight", r.storage.bits_per_weight())
        .metric("fft_bins_per_channel", r.storage.bins_per_channel());
    if r.storage.weights > 0.0 {
        out.metric("weight_sqnr_db", r.storage.sqnr_db());
    }
    Ok(())
}

/// Per-task busy time in task order.
fn fpga_done_sorted(done: &[(Completed, bool)]) -> Vec<f64> {
    let mut v = vec![0.0; done.len()];
    for (c, _) in done {
        v[c.id as usize] = c.finish_s - c.start_s;
    }
    v
}

fn op_name(op: super::ops::Op) -> &'static str {
    use super::ops::Op::*;
    match op {
        Exp => "exp",
        Reciprocal => "reciprocal",
        Rsqrt => "rsqrt",
        Sigmoid => "sigmoid",
        Tanh => "tanh",
        Softmax => "softmax",
        Gelu => "gelu",
        Silu => "silu",
        LayerNorm => "layernorm",
        RmsNorm => "rmsnorm",
    }
}
