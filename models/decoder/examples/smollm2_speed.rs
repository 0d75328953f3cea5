//! Speed of our SmolLM2-135M forward on real text, the Rust half of `bench/run_llamacpp.sh` (which
//! runs llama.cpp on the same GGUF and the same token ids and prints the ratio).
//!
//! The token stream is the ShareGPT turns tokenized in file order and concatenated. For each prompt
//! length n: prompt evaluation of the first n tokens (a fresh KV cache, every layer over the whole
//! prompt at once, logits of the last position only, as llama.cpp computes them), then decoding of
//! the next `--decode` tokens one at a time through the KV cache (teacher-forced: the text's own
//! tokens, so both engines see the same ids; logits of every step). Each timing is the best of
//! `--reps` repetitions, in wall time and in the process's CPU time (every thread; on a shared
//! machine the CPU time of a 1-thread run is the steadier measure). Matmul threads: candle reads
//! `RAYON_NUM_THREADS`.
//!
//! `cargo run --release -p decoder --example smollm2_speed -- [--prompts 128,512] [--decode 64]
//! [--reps 3] [--tokens-out FILE]` (needs `scripts/fetch-data.sh`). Prints `key=value` lines:
//! `ours_{prompt,decode}_tokens_per_s_<n>` (wall), `ours_{prompt,decode}_tokens_per_cpu_s_<n>`,
//! `ours_next_token_<n>` (argmax after the prompt) and `ours_decode_argmax_<n>` (argmax of every
//! decode step), to check that both engines agree; `--tokens-out` writes the ids used as JSON
//! `{"tokens": [...], "prompts": [...], "decode": D}`.

use std::time::Instant;

use decoder::eval::argmax;
use decoder::text::{load_turns, locate_turns};
use decoder::{Decoder, Exact, KvCache, locate};

/// Command-line options.
struct Options {
    prompts: Vec<usize>,
    decode: usize,
    reps: usize,
    tokens_out: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        prompts: vec![128, 512],
        decode: 64,
        reps: 3,
        tokens_out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{flag} {v:?}: expected a positive integer"))
        };
        match flag.as_str() {
            "--prompts" => o.prompts = value.split(',').map(number).collect::<Result<_, _>>()?,
            "--decode" => o.decode = number(&value)?,
            "--reps" => o.reps = number(&value)?,
            "--tokens-out" => o.tokens_out = Some(value),
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    Ok(o)
}

/// Wall and CPU seconds (the whole process, every thread) of one measured stretch.
#[derive(Clone, Copy)]
struct Secs {
    wall: f64,
    cpu: f64,
}

/// The CPU time of this process, every thread, in seconds.
fn cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant of the platform.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Times `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (Secs, T) {
    let (t0, c0) = (Instant::now(), cpu_s());
    let v = f();
    let secs = Secs {
        wall: t0.elapsed().as_secs_f64(),
        cpu: cpu_s() - c0,
    };
    (secs, v)
}

/// The best (smallest) wall and CPU times of `reps` runs of `f`, each run `setup` first (untimed),
/// and the value of the last run.
fn best_of<S, T>(
    reps: usize,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(S) -> T,
) -> (Secs, T) {
    let mut best = Secs {
        wall: f64::INFINITY,
        cpu: f64::INFINITY,
    };
    let mut last = None;
    for _ in 0..reps {
        let state = setup();
        let (secs, v) = timed(|| f(state));
        best.wall = best.wall.min(secs.wall);
        best.cpu = best.cpu.min(secs.cpu);
        last = Some(v);
    }
    (best, last.expect("reps > 0"))
}

/// Prompt evaluation: every layer over `ids` at once into a fresh cache; the last position's logits.
fn prompt(m: &Decoder, ids: &[u32]) -> (KvCache, Vec<f32>) {
    let d = m.config.hidden;
    let n = ids.len();
    let mut x = m.embed(ids).expect("ids from the GGUF's tokenizer");
    let positions: Vec<usize> = (0..n).collect();
    let run = vec![true; n];
    let mut cache = KvCache::new(m.config.layers);
    for l in 0..m.config.layers {
        m.layer(l, &mut x, &positions, &run, &mut cache, &Exact);
    }
    let logits = m.logits(&x[(n - 1) * d..], &Exact);
    (cache, logits)
}

/// Decoding: `ids` one at a time after `start` cached positions; the argmax of every step.
fn decode(m: &Decoder, cache: &mut KvCache, start: usize, ids: &[u32]) -> Vec<usize> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| {
            let mut x = m.embed(&[id]).expect("ids from the GGUF's tokenizer");
            for l in 0..m.config.layers {
                m.layer(l, &mut x, &[start + i], &[true], cache, &Exact);
            }
            argmax(&m.logits(&x, &Exact))
        })
        .collect()
}

fn main() -> Result<(), String> {
    let o = parse_args()?;
    let gguf = locate().ok_or("SmolLM2 GGUF not found: run scripts/fetch-data.sh")?;
    let turns_path = locate_turns().ok_or("ShareGPT turns not found: run scripts/fetch-data.sh")?;
    let (m, tok) = Decoder::load(&gguf).map_err(|e| e.to_string())?;
    let longest = o.prompts.iter().max().copied().unwrap_or(0);
    let need = longest + o.decode;
    let mut tokens = Vec::with_capacity(need);
    for t in load_turns(&turns_path)? {
        tokens.extend(tok.encode(&t));
        if tokens.len() >= need {
            break;
        }
    }
    if tokens.len() < need {
        return Err(format!(
            "the ShareGPT turns hold {} tokens, {need} needed",
            tokens.len()
        ));
    }
    tokens.truncate(need);
    if let Some(path) = &o.tokens_out {
        let json = serde_json::json!({"tokens": tokens, "prompts": o.prompts, "decode": o.decode});
        std::fs::write(path, json.to_string()).map_err(|e| format!("{path}: {e}"))?;
    }
    println!(
        "ours_threads={} ours_gguf={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()),
        gguf.display()
    );
    for &n in &o.prompts {
        let (p, (_, logits)) = best_of(o.reps, || (), |()| prompt(&m, &tokens[..n]));
        let cont = &tokens[n..n + o.decode];
        let (dc, steps) = best_of(
            o.reps,
            || prompt(&m, &tokens[..n]).0,
            |mut cache| decode(&m, &mut cache, n, cont),
        );
        let steps: Vec<String> = steps.iter().map(usize::to_string).collect();
        let d = o.decode as f64;
        println!(
            "ours_prompt_tokens_per_s_{n}={:.1} ours_prompt_tokens_per_cpu_s_{n}={:.1} \
             ours_decode_tokens_per_s_{n}={:.1} ours_decode_tokens_per_cpu_s_{n}={:.1} \
             ours_next_token_{n}={} ours_decode_argmax_{n}={}",
            n as f64 / p.wall,
            n as f64 / p.cpu,
            d / dc.wall,
            d / dc.cpu,
            argmax(&logits),
            steps.join(",")
        );
    }
    Ok(())
}
