//! Measuring DASH on the real decoder: SmolLM2-135M-Instruct (its GGUF when present, else a
//! random-weight stand-in of the same depth), real ShareGPT turns cut into token windows (training
//! windows from the first half of the turns, held-out evaluation windows from the second half),
//! the unskipped reference run (cached per process), training, and the greedy evaluation whose
//! per-token skip decisions drive the phone.
//!
//! With `oracle_tokens` > 0 the oracle redundancy study ([`super::oracle`]) runs on held-out
//! windows after the evaluation windows; under `policy: greedy_oracle` its static set replaces the learned policy.
//!
//! The policy is trained with its own seed (`dash.seed`), not the run's, so that every point of a
//! sweep that shares the DASH parameters runs the same trained policy; the result is memoised per
//! process (a pure function of the DASH parameters and the weights), and so is the unmodified
//! model's run over the evaluation windows (shared by every λ).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use decoder::skip::Baseline;
use decoder::{Config, Decoder, Exact, Tokenizer};
use sim::experiment::RunError;

use super::compensate::{AlphaFit, Compensation};
use super::oracle::{self, Oracle};
use super::params::{DashParams, PolicyKind, Weights};
use super::rollout::trajectory;
use super::train::{self, Evaluation, Trained};

/// What DASH measured on the decoder.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The trained policy (`None` under `policy: greedy_oracle`).
    pub trained: Option<Trained>,
    /// Compensation factor per layer.
    pub alpha: Vec<f64>,
    /// The policy's greedy behaviour on the held-out windows.
    pub eval: Evaluation,
    /// The oracle redundancy study, when `oracle_tokens` > 0.
    pub oracle: Option<Oracle>,
    /// The unskipped model's quality on the same windows.
    pub baseline: decoder::eval::Quality,
    /// Whether the real SmolLM2 weights were used (else the random stand-in).
    pub real_weights: bool,
}

/// A loaded decoder with its tokenizer.
type Model = Arc<(Decoder, Tokenizer)>;

/// The real decoder if its GGUF is found (loaded once per process).
fn real() -> Result<Option<Model>, String> {
    static REAL: OnceLock<Result<Option<Model>, String>> = OnceLock::new();
    REAL.get_or_init(|| match decoder::locate() {
        None => Ok(None),
        Some(path) => Decoder::load(&path)
            .map(|m| Some(Arc::new(m)))
            .map_err(|e| e.to_string()),
    })
    .clone()
}

/// Words whose merges the stand-in's byte-level vocabulary gets.
const STAND_IN_WORDS: &[&str] = &[" the", " and", "ing", " to", " of", " you", " is", "tion"];

/// A random decoder of SmolLM2's depth (30 layers) at small widths, written as a GGUF to a
/// temporary file and loaded back.
fn stand_in(seed: u64) -> Result<Model, String> {
    let c = Config {
        layers: 30,
        hidden: 64,
        heads: 4,
        kv_heads: 2,
        ffn: 96,
        vocab: 0,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
    };
    // One file per call: two runs of the same seed in one process must not share it.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "sysim-dash-stand-in-{}-{seed}-{call}.gguf",
        std::process::id()
    ));
    let mut rng = sim::rng::stream(seed, "mobile/dash/stand-in");
    decoder::gguf::write_random(&path, &c, STAND_IN_WORDS, &mut rng).map_err(|e| e.to_string())?;
    let m = Decoder::load(&path).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&path);
    Ok(Arc::new(m?))
}

/// The decoder `p.weights` asks for, and whether it is the real one.
fn model(p: &DashParams) -> Result<(Model, bool), RunError> {
    match (p.weights, real().map_err(RunError::Model)?) {
        (Weights::Random, _) | (Weights::Auto, None) => {
            Ok((stand_in(p.seed).map_err(RunError::Model)?, false))
        }
        (_, Some(m)) => Ok((m, true)),
        (Weights::Real, None) => Err(RunError::Model(
            "dash.weights: the SmolLM2 GGUF was not found (run scripts/fetch-data.sh or set SYSIM_SMOLLM2_GGUF)".into(),
        )),
    }
}

/// Training and held-out text: the two halves of the ShareGPT turns when present, else the
/// ShareGPT sentences built into `minilm`.
fn texts() -> Result<(Vec<String>, Vec<String>), RunError> {
    match decoder::text::locate_turns() {
        Some(path) => {
            let turns = decoder::text::load_turns(&path).map_err(RunError::Model)?;
            let half = turns.len() / 2;
            Ok((turns[..half].to_vec(), turns[half..].to_vec()))
        }
        None => {
            let own = |v: Vec<&str>| v.into_iter().map(String::from).collect();
            Ok((
                own(minilm::sentences::calibration()),
                own(minilm::sentences::eval(minilm::sentences::EVAL_SENTENCES)),
            ))
        }
    }
}

/// What identifies a cached baseline: real weights, seed (of the stand-in), evaluation tokens and
/// window length.
type BaselineKey = (bool, u64, usize, usize);

/// The unmodified model's run over the evaluation windows (memoised per process).
fn baseline(m: &Model, real: bool, p: &DashParams) -> Result<Arc<Baseline>, RunError> {
    static CACHE: OnceLock<Mutex<BTreeMap<BaselineKey, Arc<Baseline>>>> = OnceLock::new();
    let key = (real, p.seed, p.eval_tokens, p.eval_window_tokens);
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(b) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(b);
    }
    let (_, held_out) = texts()?;
    let windows = decoder::text::windows(&m.1, &held_out, p.eval_window_tokens, 0, p.eval_tokens);
    let b = Arc::new(Baseline::compute(&m.0, windows, &Exact).map_err(RunError::Model)?);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, b.clone());
    }
    Ok(b)
}

/// Training windows, their unskipped final states and the compensation factors α fitted on their
/// unskipped trajectories (zeros without delta compensation).
type Prepared = (Vec<Vec<u32>>, Vec<Vec<f32>>, Vec<f64>);

/// Cuts the training windows and runs each once unskipped (final states, α fit).
fn prepare(m: &Decoder, tok: &Tokenizer, p: &DashParams) -> Result<Prepared, RunError> {
    let (train_text, _) = texts()?;
    let windows: Vec<Vec<u32>> = decoder::text::windows(
        tok,
        &train_text,
        p.train_window_tokens,
        0,
        p.train_windows * p.train_window_tokens,
    )
    .into_iter()
    .take(p.train_windows)
    .collect();
    let layers = m.config.layers;
    let mut fit = AlphaFit::new(layers);
    let mut finals = Vec::with_capacity(windows.len());
    for w in &windows {
        let mut t = trajectory(m, w).map_err(RunError::Model)?;
        fit.add(&t);
        finals.push(t.pop().unwrap_or_default());
    }
    let alpha = match p.compensation {
        Compensation::Delta => fit.alpha(),
        Compensation::None => vec![0.0; layers],
    };
    Ok((windows, finals, alpha))
}

/// Trains and evaluates DASH as `p` says (memoised per process).
pub fn measure(p: &DashParams) -> Result<Arc<Measured>, RunError> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Arc<Measured>>>> = OnceLock::new();
    let key = serde_json::to_string(p).map_err(|e| RunError::Model(e.to_string()))?;
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(m) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(m);
    }
    let (model, real_weights) = model(p)?;
    let base = baseline(&model, real_weights, p)?;
    let dec = &model.0;
    let (windows, finals, alpha) = prepare(dec, &model.1, p)?;
    let oracle = if p.oracle_tokens > 0 {
        // held-out windows after the evaluation windows: a set chosen there is scored on others
        let (_, held_out) = texts()?;
        let windows = decoder::text::windows(
            &model.1,
            &held_out,
            p.eval_window_tokens,
            base.windows.len(),
            p.oracle_tokens,
        );
        let on = Baseline::compute(dec, windows, &Exact).map_err(RunError::Model)?;
        let study = oracle::study(dec, &on, &alpha, p.oracle_greedy_max, p.oracle_epsilon_kl);
        Some(study.map_err(RunError::Model)?)
    } else {
        None
    };
    let (trained, eval) = match (p.policy, &oracle) {
        (PolicyKind::Learned, _) => {
            let mut rng = sim::rng::stream(p.seed, "mobile/dash/train");
            let t = train::train(dec, &windows, &finals, alpha.clone(), p, &mut rng)
                .map_err(RunError::Model)?;
            let e = train::evaluate(dec, &base, &t, p).map_err(RunError::Model)?;
            (Some(t), e)
        }
        (PolicyKind::GreedyOracle, Some(o)) => {
            let set = oracle::greedy_set(o, o.matched_k(p.oracle_max_ratio));
            let e = oracle::evaluate_set(dec, &base, &set, p.compensation, &alpha)
                .map_err(RunError::Model)?;
            (None, e)
        }
        (PolicyKind::GreedyOracle, None) => {
            return Err(RunError::Model(
                "dash.policy: greedy_oracle needs dash.oracle_tokens > 0".into(),
            ));
        }
    };
    let m = Arc::new(Measured {
        trained,
        alpha,
        eval,
        oracle,
        baseline: base.quality(dec, &Exact),
        real_weights,
    });
    if let Ok(mut c) = cache.lock() {
        c.insert(key, m.clone());
    }
    Ok(m)
}
