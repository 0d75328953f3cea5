//! Measuring DASH on the real small model: the encoder (all-MiniLM-L6-v2's real weights when
//! present, else its random-weight stand-in), real ShareGPT sentences tokenized by its WordPiece
//! tokenizer, the unskipped reference trajectories, training, and the greedy evaluation whose
//! per-token skip patterns drive the phone.
//!
//! The policy is trained with its own seed (`dash.seed`), not the run's, so that every phone,
//! LLM and governor of a sweep runs the same trained policy; the result is memoised per process
//! (a pure function of the DASH parameters and the weights).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use sim::experiment::RunError;

use super::params::{DashParams, Weights};
use super::stack::{LayerStack, trajectory};
use super::train::{self, Evaluation, Trained};
use minilm::{self, Dims, Exact, Hidden, MiniLm, Tokenizer};

impl LayerStack for MiniLm {
    fn layers(&self) -> usize {
        self.layers.len()
    }
    fn hidden(&self) -> usize {
        self.dims.hidden
    }
    fn embed(&self, ids: &[u32]) -> Vec<f32> {
        MiniLm::embed(self, ids).x
    }
    fn layer(&self, l: usize, x: &[f32]) -> Vec<f32> {
        let h = self.dims.hidden;
        let input = Hidden {
            tokens: x.len() / h.max(1),
            width: h,
            x: x.to_vec(),
        };
        MiniLm::layer(self, l, &input, &Exact).x
    }
}

/// What DASH measured on the small model.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The trained policy.
    pub trained: Trained,
    /// Its greedy behaviour on the held-out sentences.
    pub eval: Evaluation,
    /// Whether the real all-MiniLM-L6-v2 weights were used (else the random stand-in).
    pub real_weights: bool,
}

/// Trains and evaluates on `stack` with training and evaluation sentences given as token ids.
pub fn measure_on(
    stack: &dyn LayerStack,
    train_ids: &[Vec<u32>],
    eval_ids: &[Vec<u32>],
    p: &DashParams,
) -> (Trained, Evaluation) {
    let refs: Vec<_> = train_ids.iter().map(|s| trajectory(stack, s)).collect();
    let mut rng = sim::rng::stream(p.seed, "mobile/dash/train");
    let trained = train::train(stack, train_ids, &refs, p, &mut rng);
    let erefs: Vec<_> = eval_ids.iter().map(|s| trajectory(stack, s)).collect();
    let eval = train::evaluate(stack, eval_ids, &erefs, &trained, p);
    (trained, eval)
}

/// The real encoder if its weights are found (loaded once per process).
fn real() -> Result<Option<Arc<MiniLm>>, String> {
    static REAL: OnceLock<Result<Option<Arc<MiniLm>>, String>> = OnceLock::new();
    REAL.get_or_init(|| match minilm::locate() {
        None => Ok(None),
        Some(dir) => MiniLm::load(&dir)
            .map(|m| Some(Arc::new(m)))
            .map_err(|e| e.to_string()),
    })
    .clone()
}

/// The encoder `p.weights` asks for, and whether it is the real one.
fn encoder(p: &DashParams) -> Result<(Arc<MiniLm>, bool), RunError> {
    let stand_in = || {
        let mut rng = sim::rng::stream(p.seed, "mobile/dash/stand-in");
        Arc::new(MiniLm::random(Dims::minilm(6), &mut rng))
    };
    match (p.weights, real().map_err(RunError::Model)?) {
        (Weights::Random, _) | (Weights::Auto, None) => Ok((stand_in(), false)),
        (_, Some(m)) => Ok((m, true)),
        (Weights::Real, None) => Err(RunError::Model(
            "dash.weights: real all-MiniLM-L6-v2 weights not found (run scripts/fetch-minilm.sh or set SYSIM_MINILM_DIR)".into(),
        )),
    }
}

/// Trains and evaluates DASH as `p` says (memoised per process).
pub fn measure(p: &DashParams) -> Result<Arc<Measured>, RunError> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Arc<Measured>>>> = OnceLock::new();
    let key = serde_json::to_string(p).map_err(|e| RunError::Model(e.to_string()))?;
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(m) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(m);
    }
    let (enc, real_weights) = encoder(p)?;
    let tok = Tokenizer::minilm();
    let ids = |v: Vec<&str>, n: usize| -> Vec<Vec<u32>> {
        v.into_iter()
            .take(n)
            .map(|s| tok.encode(s, p.max_tokens))
            .collect()
    };
    let train_ids = ids(minilm::sentences::calibration(), p.train_sentences);
    let eval_ids = ids(minilm::sentences::eval(p.eval_sentences), p.eval_sentences);
    let (trained, eval) = measure_on(enc.as_ref(), &train_ids, &eval_ids, p);
    let m = Arc::new(Measured {
        trained,
        eval,
        real_weights,
    });
    if let Ok(mut c) = cache.lock() {
        c.insert(key, m.clone());
    }
    Ok(m)
}
