//! Serving a user's request trace (`request_trace:`): one device serves the trace's requests first
//! come, first served; each request is its own `request` workload (prefill of its prompt, then its
//! decode steps) compiled and executed with the scenario's strategy, budget and batch.
//!
//! A request with `n` output tokens has its first token at the end of the prefill and `n − 1`
//! decode steps. At most [`MAX_DECODE_STEPS`] are simulated; the rest continue at the mean
//! per-token time of the simulated steps (the KV cache grows by one token per step, so this
//! slightly underestimates very long answers). Requests with the same lengths give the same
//! simulation, so each distinct `(prompt, decode steps)` pair runs once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sim::checkpoint::Checkpointer;
use sim::experiment::{RunContext, RunError, RunOutput};
use sim::metrics::LatencyHistogram;
use sim::request_trace::{self, TraceRequest};
use sim::trace::Trace;

use super::experiment::{build_graph, execute, setup};
use super::params::{
    MAX_CONTEXT_TOKENS, MAX_DECODE_STEPS, RequestTrace, SupernodeParams, Workload,
};

/// One served request, seconds since the start of the trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Served {
    /// The traced request.
    pub request: TraceRequest,
    /// Time the device started it.
    pub start_s: f64,
    /// Time its first token was out.
    pub first_token_s: f64,
    /// Time its last token was out.
    pub end_s: f64,
    /// Device memory peak while serving it, bytes.
    pub peak_bytes: u64,
}

/// What the device needs for a request of given lengths, relative to its start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Timing {
    first_token_s: f64,
    end_s: f64,
    peak_bytes: u64,
}

/// Serving saved after a request: the requests served so far and the timings simulated.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    served: Vec<Served>,
    cache: BTreeMap<(u64, u64), Timing>,
}

/// [`Progress`] by reference, for writing (the same fields in the same order).
#[derive(Serialize)]
struct ProgressRef<'a> {
    served: &'a [Served],
    cache: &'a BTreeMap<(u64, u64), Timing>,
}

/// Serves the trace of `t` under `p` (whose workload must be `request`), saving its progress
/// through `ckpt` when the served time has advanced by a checkpoint interval, and continuing from
/// the saved progress when there is one.
pub fn serve(
    p: &SupernodeParams,
    t: &RequestTrace,
    ctx: &RunContext,
    ckpt: Option<&Checkpointer>,
) -> Result<Vec<Served>, RunError> {
    let rows = request_trace::load(std::path::Path::new(&t.file)).map_err(RunError::Model)?;
    let rows = &rows[..t
        .requests
        .map_or(rows.len(), |n| rows.len().min(n as usize))];
    let Workload::Request { batch, .. } = p.workload else {
        return Err(RunError::Model(
            "request_trace needs workload kind `request`".into(),
        ));
    };
    let saved = match ckpt {
        Some(ckpt) => ckpt.load::<Progress>()?,
        None => None,
    };
    let Progress {
        served: mut out,
        mut cache,
    } = saved.unwrap_or_default();
    let mut free_s = out.last().map_or(0.0, |s| s.end_s);
    let every_s = ckpt.map_or(f64::INFINITY, |c| c.every().as_secs_f64());
    let mut last_save_s = free_s;
    for r in &rows[out.len().min(rows.len())..] {
        let key = (r.prompt_tokens, r.output_tokens);
        let timing = match cache.get(&key) {
            Some(&t) => t,
            None => {
                let t = time_request(p, batch, r, ctx)?;
                cache.insert(key, t);
                t
            }
        };
        let start_s = free_s.max(r.arrival_s);
        out.push(Served {
            request: *r,
            start_s,
            first_token_s: start_s + timing.first_token_s,
            end_s: start_s + timing.end_s,
            peak_bytes: timing.peak_bytes,
        });
        free_s = start_s + timing.end_s;
        if let Some(ckpt) = ckpt
            && free_s >= last_save_s + every_s
            && out.len() < rows.len()
        {
            ckpt.save_state(&ProgressRef {
                served: &out,
                cache: &cache,
            })?;
            last_save_s = free_s;
        }
    }
    if let Some(ckpt) = ckpt {
        ckpt.finish()?;
    }
    Ok(out)
}

/// Simulates one request of `r`'s lengths.
fn time_request(
    p: &SupernodeParams,
    batch: u64,
    r: &TraceRequest,
    ctx: &RunContext,
) -> Result<Timing, RunError> {
    if r.prompt_tokens > MAX_CONTEXT_TOKENS {
        return Err(RunError::Model(format!(
            "request_trace: a prompt of {} tokens exceeds the {MAX_CONTEXT_TOKENS} the model takes",
            r.prompt_tokens
        )));
    }
    let wanted = r.output_tokens.saturating_sub(1);
    let steps = wanted.clamp(1, u64::from(MAX_DECODE_STEPS));
    // The scenario's chunked prefill, if its workload has one, applies to every traced request
    // (a chunk longer than the prompt is the whole prompt).
    let chunk_tokens = match p.workload {
        Workload::Request { chunk_tokens, .. } if chunk_tokens < r.prompt_tokens => chunk_tokens,
        _ => 0,
    };
    let q = SupernodeParams {
        workload: Workload::Request {
            prompt_tokens: r.prompt_tokens,
            batch,
            decode_steps: u32::try_from(steps).unwrap_or(MAX_DECODE_STEPS),
            chunk_tokens,
        },
        ..p.clone()
    };
    let s = setup(&q, build_graph(&q, ctx))?;
    let o = execute(&s, &q.fabric)?;
    if let Some(e) = &o.device.error {
        return Err(RunError::Model(format!(
            "request of {} prompt tokens: {e}",
            r.prompt_tokens
        )));
    }
    let finished_s = o
        .device
        .finished_s
        .ok_or_else(|| RunError::Model("a traced request did not finish".into()))?;
    let ends = &o.device.token_ends_s;
    let first_token_s = ends.first().copied().unwrap_or(finished_s);
    let per_token_s = (finished_s - first_token_s) / steps as f64;
    let end_s = if wanted == 0 {
        first_token_s
    } else {
        first_token_s + per_token_s * wanted as f64
    };
    Ok(Timing {
        first_token_s,
        end_s,
        peak_bytes: o.memory.peak_bytes,
    })
}

/// The trace's metrics (`trace_*`) into `out`.
pub fn export(served: &[Served], out: &mut RunOutput) {
    let (mut ttft, mut latency) = (LatencyHistogram::new(), LatencyHistogram::new());
    let (mut queue_s, mut tokens, mut first, mut last) = (0.0, 0u64, f64::INFINITY, 0.0f64);
    for s in served {
        ttft.record_s(s.first_token_s - s.request.arrival_s);
        latency.record_s(s.end_s - s.request.arrival_s);
        queue_s += s.start_s - s.request.arrival_s;
        tokens += s.request.output_tokens;
        first = first.min(s.request.arrival_s);
        last = last.max(s.end_s);
    }
    let n = served.len().max(1) as f64;
    let span_s = (last - first).max(f64::MIN_POSITIVE);
    out.metric("trace_requests", served.len() as f64)
        .metric("trace_ttft_s_mean", ttft.mean_s())
        .metric("trace_ttft_s_p90", ttft.quantile_s(0.9))
        .metric("trace_latency_s_mean", latency.mean_s())
        .metric("trace_latency_s_p90", latency.quantile_s(0.9))
        .metric("trace_queue_s_mean", queue_s / n)
        .metric("trace_tokens_per_s", tokens as f64 / span_s)
        .metric(
            "trace_peak_device_bytes",
            served.iter().map(|s| s.peak_bytes).max().unwrap_or(0) as f64,
        );
}

/// The served requests on track `requests/device` (slices `prefill`, `decode`) and the number of
/// requests waiting as counter `requests/queued`.
pub fn timeline(served: &[Served], trace: &mut Trace) {
    if !trace.is_on() {
        return;
    }
    let mut steps: Vec<(f64, i64)> = Vec::with_capacity(2 * served.len());
    for (i, s) in served.iter().enumerate() {
        let args = [
            ("request", i as f64),
            ("prompt_tokens", s.request.prompt_tokens as f64),
            ("output_tokens", s.request.output_tokens as f64),
            ("wait_s", s.start_s - s.request.arrival_s),
        ];
        let prefill_s = s.first_token_s - s.start_s;
        trace.slice_with("requests/device", "prefill", s.start_s, prefill_s, &args);
        let decode_s = s.end_s - s.first_token_s;
        trace.slice_with(
            "requests/device",
            "decode",
            s.first_token_s,
            decode_s,
            &args,
        );
        steps.extend([(s.request.arrival_s, 1), (s.start_s, -1)]);
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut queued = 0;
    for (t_s, d) in steps {
        queued += d;
        trace.counter("requests/queued", t_s, queued as f64);
    }
}
