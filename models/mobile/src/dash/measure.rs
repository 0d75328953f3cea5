//! Measuring DASH on the real decoder: SmolLM2-135M-Instruct (its GGUF when present, else a
//! random-weight stand-in of the same depth), real ShareGPT turns cut into token windows (training
//! windows from the first half of the turns, held-out evaluation windows from the second half),
//! the unskipped reference run and the trained scorers (memoised per process), training, and the
//! greedy evaluation whose per-token skip decisions drive the phone. On the real weights the
//! reference runs, scorers, evaluations and oracle studies are also cached on disk ([`disk`],
//! layouts in [`stored`]), so a later process or commit recomputes only what its code changed.
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

use decoder::eval::Quality;
use decoder::skip::Baseline;
use decoder::{Config, Decoder, Tokenizer};
use sim::experiment::RunError;

use super::compensate::{Compensation, Compensator, Fit};
use super::disk;
use super::oracle::{self, Oracle};
use super::params::{DashParams, PolicyKind, Weights};
use super::rollout::unskipped;
use super::score::compare;
use super::stored;
use super::train::{self, Evaluation, Trained, groups};

/// What DASH measured on the decoder.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The trained policy (`None` under `policy: greedy_oracle`).
    pub trained: Option<Trained>,
    /// Compensation of skipped layers (fitted on the training windows).
    pub compensation: Compensator,
    /// The policy's greedy behaviour on the held-out windows.
    pub eval: Evaluation,
    /// The oracle redundancy study, when `oracle_tokens` > 0.
    pub oracle: Option<Oracle>,
    /// The unskipped model's quality on the same windows.
    pub baseline: Quality,
    /// The λ selection of `policy: matched`.
    pub matched: Option<Matched>,
    /// Whether the real SmolLM2 weights were used (else the random stand-in).
    pub real_weights: bool,
}

/// The λ selection of `policy: matched`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// Per λ of the grid: (λ, validation skip ratio, validation perplexity ratio).
    pub validation: Vec<(f64, f64, f64)>,
    /// The λ chosen on validation (`None`: none kept the ratio within the bound).
    pub chosen: Option<f64>,
    /// Whether the run skips (a λ was chosen and its held-out ratio stays within the bound).
    pub matched: bool,
    /// Held-out behaviour of the chosen policy even when it failed the bound (else unskipped).
    pub chosen_eval: Option<Evaluation>,
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

/// Which text a set of windows comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Split {
    /// The first half of the turns (training and validation).
    Train,
    /// The second half (evaluation and the oracle).
    HeldOut,
}

/// What identifies a cached baseline: real weights, seed (of the stand-in), split, windows
/// skipped, tokens and window length.
type BaselineKey = (bool, u64, Split, usize, usize, usize);

/// The unmodified model's run over a set of windows and its quality there.
#[derive(Debug, Clone)]
struct Reference {
    /// Windows and final states.
    run: Baseline,
    /// Perplexity of the unmodified model (KL 0, top-1 1).
    quality: Quality,
}

/// SHA-256 of the real GGUF's bytes (read once per process), naming the weights in disk-cache
/// keys; `None` when it cannot be read.
fn weights_digest() -> Option<[u8; 32]> {
    static DIGEST: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    *DIGEST.get_or_init(|| {
        let bytes = std::fs::read(decoder::locate()?).ok()?;
        Some(disk::digest(&[&bytes]))
    })
}

/// The unmodified model's run over `windows` and its quality.
fn compute_reference(m: &Decoder, windows: Vec<Vec<u32>>) -> Result<Reference, String> {
    let h = m.config.hidden;
    let mut finals = Vec::with_capacity(windows.len());
    for g in groups(&windows, 2048) {
        let fin = unskipped(m, &windows[g.clone()], None)?;
        let mut at = 0;
        for w in &windows[g] {
            finals.push(fin[at * h..(at + w.len()) * h].to_vec());
            at += w.len();
        }
    }
    let run = Baseline { windows, finals };
    let fin = run.finals.concat();
    let mut quality = Quality::default();
    compare(m, &run.windows, &fin, &fin, &mut quality);
    Ok(Reference { run, quality })
}

/// The windows' token ids as bytes, each window prefixed by its length (part of a disk key).
fn id_bytes(windows: &[Vec<u32>]) -> Vec<u8> {
    windows
        .iter()
        .flat_map(|w| {
            let len = (w.len() as u32).to_le_bytes();
            len.into_iter()
                .chain(w.iter().flat_map(|t| t.to_le_bytes()))
        })
        .collect()
}

/// SHA-256 of the source of everything a disk entry's value depends on besides its key's inputs:
/// the decoder's forward and DASH's training, so an edit to any of them makes earlier entries
/// foreign (recomputed, never reused stale).
fn code_digest() -> [u8; 32] {
    const SOURCES: [&str; 15] = [
        include_str!("../../../decoder/src/gguf.rs"),
        include_str!("../../../decoder/src/model.rs"),
        include_str!("../../../decoder/src/skip.rs"),
        include_str!("../../../decoder/src/batch.rs"),
        include_str!("../../../decoder/src/linalg.rs"),
        include_str!("../../../decoder/src/quant.rs"),
        include_str!("../../../decoder/src/eval.rs"),
        include_str!("train.rs"),
        include_str!("credit.rs"),
        include_str!("adam.rs"),
        include_str!("rollout.rs"),
        include_str!("policy.rs"),
        include_str!("features.rs"),
        include_str!("score.rs"),
        include_str!("compensate.rs"),
    ];
    let parts: Vec<&[u8]> = SOURCES.iter().map(|s| s.as_bytes()).collect();
    disk::digest(&parts)
}

/// Windows `skip` onwards of `split` (`tokens` tokens in windows of `window`), and the unmodified
/// model's run over them: memoised per process and, on the real weights, cached on disk
/// ([`disk`], keyed by the weights' digest and the windows' token ids).
fn baseline(
    m: &Model,
    real: bool,
    seed: u64,
    (split, skip, tokens, window): (Split, usize, usize, usize),
) -> Result<Arc<Reference>, RunError> {
    static CACHE: OnceLock<Mutex<BTreeMap<BaselineKey, Arc<Reference>>>> = OnceLock::new();
    let key = (real, seed, split, skip, tokens, window);
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(b) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(b);
    }
    let (train_text, held_out) = texts()?;
    let text = if split == Split::Train {
        &train_text
    } else {
        &held_out
    };
    let windows = decoder::text::windows(&m.1, text, window, skip, tokens);
    let dec = &m.0;
    let digest = weights_digest().filter(|_| real);
    let r = match digest {
        Some(d) => {
            let key = disk::digest(&[
                b"dash-reference-v2",
                &code_digest(),
                &d,
                &id_bytes(&windows),
            ]);
            let h = dec.config.hidden;
            disk::DiskCache::repo()
                .get_or_compute(
                    &key,
                    |b| {
                        let (run, quality) = stored::decode_reference(b, &windows, h)?;
                        Some(Reference { run, quality })
                    },
                    |r| stored::encode_reference(&r.run, &r.quality),
                    || compute_reference(dec, windows.clone()),
                )
                .map(|(r, _)| r)
        }
        None => compute_reference(dec, windows),
    };
    let b = Arc::new(r.map_err(RunError::Model)?);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, b.clone());
    }
    Ok(b)
}

/// Training windows, their unskipped final states (stacked) and the compensation fitted on their
/// unskipped runs.
struct Prepared {
    windows: Vec<Vec<u32>>,
    finals: Vec<f32>,
    compensation: Compensator,
    /// On the real weights, a digest naming the compensation (code, weights, mode, training
    /// windows' token ids): part of the oracle's disk keys.
    compensation_key: Option<[u8; 32]>,
}

/// Cuts the training windows and runs them once unskipped (final states, compensation fit);
/// memoised per process.
fn prepare(m: &Model, real: bool, p: &DashParams) -> Result<Arc<Prepared>, RunError> {
    type Key = (bool, u64, usize, usize, String);
    static CACHE: OnceLock<Mutex<BTreeMap<Key, Arc<Prepared>>>> = OnceLock::new();
    let linear = p.compensation == Compensation::Linear;
    let key = (
        real,
        p.seed,
        p.train_windows,
        p.train_window_tokens,
        format!("{:?}", p.compensation),
    );
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(b) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(b);
    }
    let (train_text, _) = texts()?;
    let windows: Vec<Vec<u32>> = decoder::text::windows(
        &m.1,
        &train_text,
        p.train_window_tokens,
        0,
        p.train_windows * p.train_window_tokens,
    )
    .into_iter()
    .take(p.train_windows)
    .collect();
    let dec = &m.0;
    let mut fit = Fit::new(dec.config.layers, dec.config.hidden, linear);
    let mut finals = Vec::new();
    for g in groups(&windows, 2048) {
        finals.extend(unskipped(dec, &windows[g], Some(&mut fit)).map_err(RunError::Model)?);
    }
    let mode = serde_json::to_vec(&p.compensation).map_err(|e| RunError::Model(e.to_string()))?;
    let compensation_key = weights_digest().filter(|_| real).map(|d| {
        disk::digest(&[
            b"dash-compensation-v1",
            &code_digest(),
            &d,
            &mode,
            &id_bytes(&windows),
        ])
    });
    let prepared = Arc::new(Prepared {
        windows,
        finals,
        compensation: fit.finish(p.compensation),
        compensation_key,
    });
    if let Ok(mut c) = cache.lock() {
        c.insert(key, prepared.clone());
    }
    Ok(prepared)
}

/// A trained scorer and, on the real weights, its disk key (which also names its evaluations).
#[derive(Debug, Clone)]
struct Policy {
    /// The scorer with its compensation.
    trained: Arc<Trained>,
    /// The scorer's disk key (`None` on the stand-in weights).
    key: Option<[u8; 32]>,
}

/// The scorer trained as `p` says with training seed `seed` (memoised per process: a sweep's
/// points and the matched grid share it).
fn trained(m: &Model, real: bool, p: &DashParams, seed: u64) -> Result<Policy, RunError> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Policy>>> = OnceLock::new();
    let key = serde_json::to_string(&(real, seed, p.lambda, train_key(p)))
        .map_err(|e| RunError::Model(e.to_string()))?;
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(t) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(t);
    }
    let prep = prepare(m, real, p)?;
    let compute = || {
        let mut rng = sim::rng::stream(seed, "mobile/dash/train");
        train::train(
            &m.0,
            &prep.windows,
            &prep.finals,
            prep.compensation.clone(),
            p,
            &mut rng,
        )
    };
    // On the real weights the scorer is cached on disk, keyed by the code, the weights, the
    // training settings and seed, and the training windows' token ids.
    let disk_key = weights_digest().filter(|_| real).map(|d| {
        disk::digest(&[
            b"dash-scorer-v1",
            &code_digest(),
            &d,
            key.as_bytes(),
            &id_bytes(&prep.windows),
        ])
    });
    let t = match disk_key {
        Some(k) => {
            let features = super::features::len(m.0.config.layers);
            disk::DiskCache::repo()
                .get_or_compute(
                    &k,
                    |b| stored::decode_scorer(b, features, &prep.compensation),
                    stored::encode_scorer,
                    compute,
                )
                .map(|(t, _)| t)
        }
        None => compute(),
    }
    .map_err(RunError::Model)?;
    let policy = Policy {
        trained: Arc::new(t),
        key: disk_key,
    };
    if let Ok(mut c) = cache.lock() {
        c.insert(key, policy.clone());
    }
    Ok(policy)
}

/// `compute`'s evaluation over `base`, cached on disk under `key` (a digest naming what was
/// evaluated; `None`: not cached, the stand-in weights).
fn evaluation(
    key: Option<[u8; 32]>,
    base: &Baseline,
    layers: usize,
    compute: impl FnOnce() -> Result<Evaluation, String>,
) -> Result<Evaluation, RunError> {
    let tokens: usize = base.windows.iter().map(Vec::len).sum();
    match key {
        Some(k) => disk::DiskCache::repo()
            .get_or_compute(
                &k,
                |b| stored::decode_evaluation(b, tokens, layers),
                stored::encode_evaluation,
                compute,
            )
            .map(|(e, _)| e),
        None => compute(),
    }
    .map_err(RunError::Model)
}

/// The greedy behaviour of `policy` on `base` (cached on disk under the scorer's key and the
/// windows' token ids: the reference's final states follow from the code and weights the
/// scorer's key names).
fn evaluated(
    dec: &Decoder,
    base: &Baseline,
    policy: &Policy,
    p: &DashParams,
) -> Result<Evaluation, RunError> {
    let key = policy
        .key
        .map(|k| disk::digest(&[b"dash-eval-v1", &k, &id_bytes(&base.windows)]));
    evaluation(key, base, dec.config.layers, || {
        train::evaluate(dec, base, &policy.trained, p)
    })
}

/// The parameters training depends on besides λ and the seed.
fn train_key(p: &DashParams) -> serde_json::Value {
    serde_json::json!([
        p.asynchronous,
        p.compensation,
        p.epochs,
        p.learning_rate,
        p.initial_skip,
        p.train_windows,
        p.train_window_tokens,
        p.batch_windows,
        p.weights,
    ])
}

/// Trains and evaluates DASH as `p` says for replication `replication` (memoised per process).
pub fn measure(p: &DashParams, replication: u32) -> Result<Arc<Measured>, RunError> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Arc<Measured>>>> = OnceLock::new();
    let seed = if p.seed_per_replication {
        p.seed.wrapping_add(u64::from(replication))
    } else {
        p.seed
    };
    let key = serde_json::to_string(&(p, seed)).map_err(|e| RunError::Model(e.to_string()))?;
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(m) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(m);
    }
    let (model, real_weights) = model(p)?;
    let split = (Split::HeldOut, 0, p.eval_tokens, p.eval_window_tokens);
    let reference = baseline(&model, real_weights, p.seed, split)?;
    let (base, base_q) = (&reference.run, &reference.quality);
    let dec = &model.0;
    let prepared = prepare(&model, real_weights, p)?;
    let compensation = prepared.compensation.clone();
    // The oracle's code is part of its disk keys (the compensation key names the rest).
    let oracle_code = include_str!("oracle.rs").as_bytes();
    let oracle = if p.oracle_tokens > 0 {
        // held-out windows after the evaluation windows: a set chosen here is scored on others
        let split = (
            Split::HeldOut,
            base.windows.len(),
            p.oracle_tokens,
            p.eval_window_tokens,
        );
        let on = baseline(&model, real_weights, p.seed, split)?;
        let compute = || {
            oracle::study(
                dec,
                &on.run,
                &compensation,
                p.oracle_greedy_max,
                p.oracle_epsilon_kl,
            )
        };
        let study = match prepared.compensation_key {
            Some(c) => {
                let key = disk::digest(&[
                    b"dash-oracle-v1",
                    oracle_code,
                    &c,
                    &id_bytes(&on.run.windows),
                    &(p.oracle_greedy_max as u64).to_le_bytes(),
                    &p.oracle_epsilon_kl.to_le_bytes(),
                ]);
                let layers = dec.config.layers;
                disk::DiskCache::repo()
                    .get_or_compute(
                        &key,
                        |b| stored::decode_oracle(b, layers),
                        stored::encode_oracle,
                        compute,
                    )
                    .map(|(o, _)| o)
            }
            None => compute(),
        };
        Some(study.map_err(RunError::Model)?)
    } else {
        None
    };
    let mut matched = None;
    let (trained, eval) = match (p.policy, &oracle) {
        (PolicyKind::Learned, _) => {
            let t = trained(&model, real_weights, p, seed)?;
            let e = evaluated(dec, base, &t, p)?;
            (Some((*t.trained).clone()), e)
        }
        (PolicyKind::Matched, _) => {
            let (t, e, mt) = select(&model, real_weights, p, seed, base, base_q)?;
            matched = Some(mt);
            (t, e)
        }
        (PolicyKind::GreedyOracle, Some(o)) => {
            let set = oracle::greedy_set(o, o.matched_k(p.max_ppl_ratio));
            let key = prepared.compensation_key.map(|c| {
                let set_bytes: Vec<u8> = set.iter().map(|s| u8::from(*s)).collect();
                disk::digest(&[
                    b"dash-set-v1",
                    oracle_code,
                    &c,
                    &set_bytes,
                    &id_bytes(&base.windows),
                ])
            });
            let e = evaluation(key, base, dec.config.layers, || {
                oracle::evaluate_set(dec, base, &set, &compensation)
            })?;
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
        compensation,
        eval,
        oracle,
        baseline: *base_q,
        real_weights,
        matched,
    });
    if let Ok(mut c) = cache.lock() {
        c.insert(key, m.clone());
    }
    Ok(m)
}

/// `policy: matched`: one scorer per λ of the grid, the λ chosen on the validation windows, then
/// run on the evaluation windows `base` (unskipped when nothing qualifies).
fn select(
    model: &Model,
    real: bool,
    p: &DashParams,
    seed: u64,
    base: &Baseline,
    base_q: &Quality,
) -> Result<(Option<Trained>, Evaluation, Matched), RunError> {
    let dec = &model.0;
    let split = (
        Split::Train,
        p.train_windows,
        p.validation_tokens,
        p.train_window_tokens,
    );
    let val = baseline(model, real, p.seed, split)?;
    let (val, val_q) = (&val.run, &val.quality);
    let mut validation = Vec::with_capacity(p.lambdas.len());
    let mut best: Option<(f64, f64, Policy)> = None;
    for &lambda in &p.lambdas {
        let q = DashParams {
            lambda,
            ..p.clone()
        };
        let t = trained(model, real, &q, seed)?;
        let e = evaluated(dec, val, &t, &q)?;
        let ratio = e.ratio(val_q);
        validation.push((lambda, e.skip_ratio, ratio));
        let better = best.as_ref().is_none_or(|(_, s, _)| e.skip_ratio > *s);
        if ratio <= p.max_ppl_ratio && e.skip_ratio > 0.0 && better {
            best = Some((lambda, e.skip_ratio, t));
        }
    }
    let tokens = base.windows.iter().map(Vec::len).sum();
    let unskipped = || Evaluation::unskipped(*base_q, tokens, dec.config.layers);
    let Some((lambda, _, t)) = best else {
        let mt = Matched {
            validation,
            chosen: None,
            matched: false,
            chosen_eval: None,
        };
        return Ok((None, unskipped(), mt));
    };
    let q = DashParams {
        lambda,
        ..p.clone()
    };
    let e = evaluated(dec, base, &t, &q)?;
    let ok = e.ratio(base_q) <= p.max_ppl_ratio;
    let mt = Matched {
        validation,
        chosen: Some(lambda),
        matched: ok,
        chosen_eval: Some(e.clone()),
    };
    if ok {
        Ok((Some((*t.trained).clone()), e, mt))
    } else {
        Ok((None, unskipped(), mt))
    }
}
