//! The decoder study's inputs, loaded once per process: SmolLM2-135M-Instruct from its GGUF and
//! the ShareGPT turns (`decoder::locate`, `decoder::text::locate_turns`; `scripts/fetch-data.sh`),
//! or, when either is absent, a random-weight stand-in of the same architecture at a tiny shape
//! reading the embedded MiniLM sentences byte by byte (metric `real_weights` = 0). The unquantized
//! model's run over each evaluation chunk ([`Baseline`]) is cached, so a sweep pays it once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use decoder::model::{Block, Config, Linear};
use decoder::skip::Baseline;
use decoder::{Decoder, Tokenizer};
use rand::Rng;

use super::lm::split;

/// The model and the text of the study.
pub struct Source {
    /// The decoder (real or stand-in).
    pub model: Decoder,
    /// True for the real SmolLM2 on ShareGPT text.
    pub real: bool,
    tokenizer: Option<Tokenizer>,
    turns: Vec<String>,
}

/// One evaluation chunk: its calibration windows and the reference run over its windows.
pub struct Chunk {
    /// Calibration windows (the text before every chunk).
    pub calib: Vec<Vec<u32>>,
    /// The unquantized model's run over the chunk's windows.
    pub base: Baseline,
}

/// Key of a cached chunk: (window, calibration tokens, evaluation tokens, chunk index).
type ChunkKey = (usize, usize, usize, usize);

static SOURCE: OnceLock<Result<Arc<Source>, String>> = OnceLock::new();
static CHUNKS: Mutex<BTreeMap<ChunkKey, Arc<Chunk>>> = Mutex::new(BTreeMap::new());

/// The study's model and text (loaded on first use).
pub fn source() -> Result<Arc<Source>, String> {
    SOURCE.get_or_init(|| load().map(Arc::new)).clone()
}

fn load() -> Result<Source, String> {
    match (decoder::locate(), decoder::text::locate_turns()) {
        (Some(gguf), Some(turns)) => {
            let (model, tok) = Decoder::load(&gguf)
                .map_err(|e| format!("loading SmolLM2 from {}: {e}", gguf.display()))?;
            Ok(Source {
                model,
                real: true,
                tokenizer: Some(tok),
                turns: decoder::text::load_turns(&turns)?,
            })
        }
        _ => {
            eprintln!(
                "fpga: SmolLM2 GGUF or ShareGPT turns not found (scripts/fetch-data.sh): the decoder \
                 study runs on the random-weight stand-in (real_weights = 0)"
            );
            let mut text = minilm::sentences::calibration();
            text.extend(minilm::sentences::eval(64));
            Ok(Source {
                model: stand_in(&mut sim::rng::stream(17, "fpga/lm-stand-in")),
                real: false,
                tokenizer: None,
                turns: text.into_iter().map(String::from).collect(),
            })
        }
    }
}

impl Source {
    /// Token windows of ≤ `window` tokens covering at least `tokens` tokens (SmolLM2's BPE, or
    /// bytes for the stand-in).
    fn windows(&self, window: usize, tokens: usize) -> Vec<Vec<u32>> {
        match &self.tokenizer {
            Some(tok) => decoder::text::windows(tok, &self.turns, window, 0, tokens),
            None => {
                let bytes: Vec<u32> = self
                    .turns
                    .iter()
                    .flat_map(|t| t.bytes().map(u32::from))
                    .take(tokens + window)
                    .collect();
                bytes.chunks(window).map(<[u32]>::to_vec).collect()
            }
        }
    }

    /// Chunk `chunk` of `eval` tokens after `calib` calibration tokens, in windows of `window`
    /// (cached).
    pub fn chunk(
        &self,
        window: usize,
        calib: usize,
        eval: usize,
        chunk: usize,
    ) -> Result<Arc<Chunk>, String> {
        let key = (window, calib, eval, chunk);
        if let Some(c) = CHUNKS.lock().map_err(|e| e.to_string())?.get(&key) {
            return Ok(c.clone());
        }
        let need = calib + (chunk + 1) * eval;
        // Each group may overshoot its count by up to one window.
        let windows = self.windows(window, need + (chunk + 2) * window);
        let (calib_w, eval_w) = split(windows, calib, eval, chunk).ok_or_else(|| {
            format!("the text holds fewer than {need} tokens for evaluation chunk {chunk}")
        })?;
        let base = Baseline::compute(&self.model, eval_w, &decoder::Exact)?;
        let c = Arc::new(Chunk {
            calib: calib_w,
            base,
        });
        CHUNKS
            .lock()
            .map_err(|e| e.to_string())?
            .insert(key, c.clone());
        Ok(c)
    }
}

/// A random decoder of the Llama architecture at a tiny shape (2 layers, 48 wide, byte vocabulary),
/// with a few outlier channels in its RMSNorm gains as real LLMs have.
pub fn stand_in(rng: &mut impl Rng) -> Decoder {
    let c = Config {
        layers: 2,
        hidden: 48,
        heads: 4,
        kv_heads: 2,
        ffn: 96,
        vocab: 256,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
    };
    // Box–Muller normals, σ = 0.15 (so the stand-in needs no distribution crate).
    let mut normal = || {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        (0.15 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    };
    let mut mat = |r: usize, k: usize| Linear::new((0..r * k).map(|_| normal()).collect(), r, k);
    let (d, kvd, f) = (c.hidden, c.kv_dim(), c.ffn);
    let gain: Vec<f32> = (0..d)
        .map(|i| if i % 17 == 3 { 8.0 } else { 1.0 })
        .collect();
    let blocks = (0..c.layers)
        .map(|_| Block {
            attn_norm: gain.clone(),
            q: mat(d, d),
            k: mat(kvd, d),
            v: mat(kvd, d),
            o: mat(d, d),
            ffn_norm: gain.clone(),
            gate: mat(f, d),
            up: mat(f, d),
            down: mat(d, f),
        })
        .collect();
    let head = mat(c.vocab, d);
    Decoder {
        config: c,
        embed: head.weights().iter().map(|v| v * 4.0).collect(),
        blocks,
        norm: vec![1.0; d],
        head,
    }
}
