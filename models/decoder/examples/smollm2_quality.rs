//! Baseline quality and speed of the real SmolLM2-135M on held-out ShareGPT text, and what skipping
//! one layer for every token costs (perplexity, KL, top-1 agreement) — the per-layer redundancy a
//! DASH policy can exploit.
//!
//! `cargo run -p decoder --example smollm2_quality -- [TOKENS] [SWEEP_TOKENS]` (defaults 20000 and
//! 2000; needs `scripts/fetch-data.sh`). Prints a table on stdout.

use std::time::Instant;

use decoder::skip::{Baseline, score};
use decoder::text::{load_turns, locate_turns, windows};
use decoder::{Decoder, Exact, locate};

/// Tokens per window (a fresh sequence from position 0).
const WINDOW: usize = 256;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let tokens = args
        .next()
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or(20_000);
    let sweep = args
        .next()
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or(2_000);
    let gguf = locate().ok_or("SmolLM2 GGUF not found: run scripts/fetch-data.sh")?;
    let turns_path = locate_turns().ok_or("ShareGPT turns not found: run scripts/fetch-data.sh")?;
    let (m, tok) = Decoder::load(&gguf).map_err(|e| e.to_string())?;
    let turns = load_turns(&turns_path)?;

    let held_out = windows(&tok, &turns, WINDOW, 0, tokens);
    let n: usize = held_out.iter().map(Vec::len).sum();
    let t0 = Instant::now();
    let base = Baseline::compute(&m, held_out, &Exact)?;
    let secs = t0.elapsed().as_secs_f64();
    let q = base.quality(&m, &Exact);
    println!(
        "baseline: {} windows, {n} tokens ({} scored), perplexity {:.3}, forward {:.1} tokens/s (prompt evaluation, window {WINDOW}, f32)",
        base.windows.len(),
        base.scored_tokens(),
        q.perplexity(),
        n as f64 / secs
    );

    let sub = Baseline::compute(&m, windows(&tok, &turns, WINDOW, 0, sweep), &Exact)?;
    let q0 = sub.quality(&m, &Exact);
    println!(
        "\nskip one layer for every token ({} scored tokens; baseline perplexity {:.3})",
        sub.scored_tokens(),
        q0.perplexity()
    );
    println!("layer\tppl\tppl_increase_pct\tmean_kl_nats\ttop1_agreement");
    for layer in 0..m.config.layers {
        let mut decide = |l: usize, _: &mut [f32], run: &mut [bool]| {
            if l == layer {
                run.fill(false);
            }
        };
        let (q, _) = score(&m, &sub, &mut decide, &Exact)?;
        println!(
            "{layer}\t{:.3}\t{:.2}\t{:.4}\t{:.4}",
            q.perplexity(),
            (q.perplexity() / q0.perplexity() - 1.0) * 100.0,
            q.mean_kl(),
            q.top1()
        );
    }
    Ok(())
}
