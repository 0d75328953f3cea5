//! The Llama-architecture forward pass, layer by layer: RMSNorm → grouped-query attention with
//! rotary position embedding (GGML's "normal" rope: adjacent pairs, as llama.cpp runs Llama GGUFs)
//! and a KV cache → residual → RMSNorm → SwiGLU → residual; final RMSNorm and the (tied) LM head.
//!
//! A caller drives it one layer at a time ([`Decoder::layer`]) and chooses per token whether the
//! layer executes; a token that skips a layer keeps its hidden state and leaves no KV entry at that
//! layer, so later tokens attend only to the tokens that executed it. The nonlinear operators and
//! the inputs of every linear layer go through [`Ops`] (substitute an approximation, fake-quantize
//! activations); [`Decoder::map_weights`] rewrites weights (fake-quantize them).

use candle_core::{Device, Tensor};

/// Shape of a Llama-architecture decoder (read from the GGUF metadata `llama.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Transformer blocks (`llama.block_count`).
    pub layers: usize,
    /// Hidden size (`llama.embedding_length`).
    pub hidden: usize,
    /// Query heads (`llama.attention.head_count`).
    pub heads: usize,
    /// Key/value heads, grouped-query attention (`llama.attention.head_count_kv`).
    pub kv_heads: usize,
    /// SwiGLU inner size (`llama.feed_forward_length`).
    pub ffn: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub vocab: usize,
    /// Rotary base θ (`llama.rope.freq_base`).
    pub rope_theta: f32,
    /// RMSNorm ε (`llama.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
}

impl Config {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
    /// Width of the key (and value) projection: `kv_heads · head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim()
    }
}

/// Which linear layer a hook is called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinearSite {
    /// Attention query projection.
    Query,
    /// Attention key projection.
    Key,
    /// Attention value projection.
    Value,
    /// Attention output projection.
    Output,
    /// SwiGLU gate projection.
    Gate,
    /// SwiGLU up projection.
    Up,
    /// SwiGLU down projection.
    Down,
    /// The LM head (layer index = number of layers).
    Head,
}

impl LinearSite {
    /// The seven sites inside one transformer block, in execution order.
    pub const BLOCK: [LinearSite; 7] = [
        LinearSite::Query,
        LinearSite::Key,
        LinearSite::Value,
        LinearSite::Output,
        LinearSite::Gate,
        LinearSite::Up,
        LinearSite::Down,
    ];
}

/// Substitutable operators and activation hooks of the forward pass. Every default is the exact
/// f32 operator; implement only what an experiment changes.
pub trait Ops {
    /// Softmax over one attention-score row, in place.
    fn softmax(&self, row: &mut [f32]) {
        exact_softmax(row);
    }
    /// SiLU x·σ(x) elementwise, in place (the SwiGLU gate).
    fn silu(&self, x: &mut [f32]) {
        for v in x {
            *v = exact_silu(*v);
        }
    }
    /// RMS normalization without the learned scale, x/√(mean(x²) + ε), over one row, in place.
    fn rms_norm(&self, row: &mut [f32], eps: f32) {
        exact_rms_norm(row, eps);
    }
    /// Hook on the input of linear layer `site` of block `layer` (rows of `cols` values) just
    /// before its matmul, e.g. to fake-quantize activations. Default: unchanged.
    fn linear_input(&self, _layer: usize, _site: LinearSite, _x: &mut [f32], _cols: usize) {}
    /// Hook on the keys (after the rotary embedding) and values that block `layer` appends to the
    /// KV cache (rows of `kv_dim` values), e.g. to fake-quantize the cache. Default: unchanged.
    fn kv_cache(&self, _layer: usize, _k: &mut [f32], _v: &mut [f32], _kv_dim: usize) {}
}

/// Exact f32 operators (the reference forward pass).
#[derive(Debug, Clone, Copy, Default)]
pub struct Exact;

impl Ops for Exact {}

/// Exact softmax, in place (max subtracted first).
pub fn exact_softmax(row: &mut [f32]) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let mut s = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in row.iter_mut() {
        *v /= s;
    }
}

/// Exact SiLU x·σ(x) = x/(1 + e^−x).
pub fn exact_silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// Exact RMS normalization x/√(mean(x²) + ε), in place.
pub fn exact_rms_norm(row: &mut [f32], eps: f32) {
    let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    for v in row {
        *v *= inv;
    }
}

/// A bias-free linear layer y = x·Wᵀ, W of shape (out, in), run by candle's CPU matmul.
#[derive(Debug, Clone)]
pub struct Linear {
    w: Tensor,
    /// Output features (rows of W).
    pub out_features: usize,
    /// Input features (columns of W).
    pub in_features: usize,
}

impl Linear {
    /// A layer from row-major f32 weights of shape (out_features, in_features).
    pub fn new(w: Vec<f32>, out_features: usize, in_features: usize) -> Self {
        assert_eq!(w.len(), out_features * in_features, "Linear weight size");
        let w = Tensor::from_vec(w, (out_features, in_features), &Device::Cpu)
            .expect("shape equals the data length");
        Self {
            w,
            out_features,
            in_features,
        }
    }

    /// The weights, row-major (out_features × in_features).
    pub fn weights(&self) -> Vec<f32> {
        self.w
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("an f32 tensor")
    }

    /// y = x·Wᵀ for `x` of `rows` rows of `in_features` values.
    pub fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(x.len(), rows * self.in_features, "Linear input size");
        let x = Tensor::from_slice(x, (rows, self.in_features), &Device::Cpu)
            .expect("shape equals the data length");
        x.matmul(&self.w.t().expect("2-d"))
            .and_then(|y| y.flatten_all())
            .and_then(|y| y.to_vec1())
            .expect("shapes checked at construction")
    }
}

/// One transformer block.
#[derive(Debug, Clone)]
pub struct Block {
    /// RMSNorm scale before attention.
    pub attn_norm: Vec<f32>,
    /// Query projection (hidden → heads·head_dim).
    pub q: Linear,
    /// Key projection (hidden → kv_dim).
    pub k: Linear,
    /// Value projection (hidden → kv_dim).
    pub v: Linear,
    /// Attention output projection.
    pub o: Linear,
    /// RMSNorm scale before the MLP.
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate projection.
    pub gate: Linear,
    /// SwiGLU up projection.
    pub up: Linear,
    /// SwiGLU down projection.
    pub down: Linear,
}

impl Block {
    fn linear_mut(&mut self, site: LinearSite) -> &mut Linear {
        match site {
            LinearSite::Query => &mut self.q,
            LinearSite::Key => &mut self.k,
            LinearSite::Value => &mut self.v,
            LinearSite::Output => &mut self.o,
            LinearSite::Gate => &mut self.gate,
            LinearSite::Up => &mut self.up,
            LinearSite::Down => &mut self.down,
            LinearSite::Head => unreachable!("the LM head is not inside a block"),
        }
    }
}

/// A loaded decoder: embeddings, blocks, final norm, LM head.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Its shape.
    pub config: Config,
    /// Token embeddings, row-major (vocab × hidden).
    pub embed: Vec<f32>,
    /// The transformer blocks.
    pub blocks: Vec<Block>,
    /// Final RMSNorm scale.
    pub norm: Vec<f32>,
    /// LM head (vocab × hidden); the embeddings when tied, as in SmolLM2.
    pub head: Linear,
}

/// Keys and values of one layer: one entry per token that executed the layer.
#[derive(Debug, Clone, Default)]
struct LayerCache {
    pos: Vec<usize>,
    k: Vec<f32>,
    v: Vec<f32>,
}

/// The KV cache of one sequence, per layer.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<LayerCache>,
}

impl KvCache {
    /// An empty cache for `layers` layers.
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![LayerCache::default(); layers],
        }
    }
    /// Tokens holding an entry at `layer`.
    pub fn entries(&self, layer: usize) -> usize {
        self.layers[layer].pos.len()
    }
}

impl Decoder {
    /// Hidden states of `ids` (rows of `hidden` values); errors name an id outside the vocabulary.
    pub fn embed(&self, ids: &[u32]) -> Result<Vec<f32>, String> {
        let d = self.config.hidden;
        let mut x = Vec::with_capacity(ids.len() * d);
        for &id in ids {
            let r = id as usize;
            if r >= self.config.vocab {
                return Err(format!(
                    "token id {id} outside the vocabulary of {}",
                    self.config.vocab
                ));
            }
            x.extend_from_slice(&self.embed[r * d..(r + 1) * d]);
        }
        Ok(x)
    }

    /// Runs block `layer` on the rows of `x` (one per token, at absolute `positions`) whose `run`
    /// flag is set, appending their keys and values to `cache`; rows not run keep their value
    /// (the layer is skipped for that token and leaves no KV entry).
    pub fn layer(
        &self,
        layer: usize,
        x: &mut [f32],
        positions: &[usize],
        run: &[bool],
        cache: &mut KvCache,
        ops: &dyn Ops,
    ) {
        let c = &self.config;
        let (d, hd, kvd) = (c.hidden, c.head_dim(), c.kv_dim());
        assert_eq!(x.len(), positions.len() * d, "one row per position");
        assert_eq!(run.len(), positions.len(), "one flag per position");
        let idx: Vec<usize> = (0..run.len()).filter(|&i| run[i]).collect();
        let m = idx.len();
        if m == 0 {
            return;
        }
        let b = &self.blocks[layer];
        let mut h: Vec<f32> = idx
            .iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
            .collect();
        let pos: Vec<usize> = idx.iter().map(|&i| positions[i]).collect();

        // Attention.
        let hn = self.norm_rows(&h, &b.attn_norm, ops);
        let project = |site: LinearSite, lin: &Linear| {
            let mut input = hn.clone();
            ops.linear_input(layer, site, &mut input, d);
            lin.apply(&input, m)
        };
        let mut q = project(LinearSite::Query, &b.q);
        let mut k = project(LinearSite::Key, &b.k);
        let mut v = project(LinearSite::Value, &b.v);
        for (t, &p) in pos.iter().enumerate() {
            let (cos, sin) = rope_table(p, hd, c.rope_theta);
            for head in q[t * d..(t + 1) * d].chunks_mut(hd) {
                rotate(head, &cos, &sin);
            }
            for head in k[t * kvd..(t + 1) * kvd].chunks_mut(hd) {
                rotate(head, &cos, &sin);
            }
        }
        ops.kv_cache(layer, &mut k, &mut v, kvd);
        let lc = &mut cache.layers[layer];
        lc.pos.extend_from_slice(&pos);
        lc.k.extend_from_slice(&k);
        lc.v.extend_from_slice(&v);

        let group = c.heads / c.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let nk = lc.pos.len();
        // Scores of every query head against every cached key: per KV head one matmul over its
        // group's query heads and all rows, (group·m × hd)·(nk × hd)ᵀ; row `head·m + t`.
        let qg = by_kv_head(&q, m, c.kv_heads, group, hd);
        let kg = by_kv_head(&lc.k, nk, c.kv_heads, 1, hd);
        let vg = by_kv_head(&lc.v, nk, c.kv_heads, 1, hd);
        let rows = group * m;
        let scores = batched_matmul(&qg, &kg, (c.kv_heads, rows, nk, hd), true);
        // Softmax over the keys a row may see (positions ≤ its own); weight 0 for the others.
        let mut weights = vec![0.0f32; scores.len()];
        let mut keys = Vec::with_capacity(nk);
        let mut row = Vec::with_capacity(nk);
        for (t, &p) in pos.iter().enumerate() {
            keys.clear();
            keys.extend((0..nk).filter(|&j| lc.pos[j] <= p));
            for head in 0..c.heads {
                let r = (head * m + t) * nk;
                row.clear();
                row.extend(keys.iter().map(|&j| scores[r + j] * scale));
                ops.softmax(&mut row);
                for (&j, &w) in keys.iter().zip(&row) {
                    weights[r + j] = w;
                }
            }
        }
        let out = batched_matmul(&weights, &vg, (c.kv_heads, rows, hd, nk), false);
        let mut att = vec![0.0f32; m * d];
        for head in 0..c.heads {
            for t in 0..m {
                let r = (head * m + t) * hd;
                att[t * d + head * hd..t * d + (head + 1) * hd].copy_from_slice(&out[r..r + hd]);
            }
        }
        ops.linear_input(layer, LinearSite::Output, &mut att, d);
        for (hv, ov) in h.iter_mut().zip(b.o.apply(&att, m)) {
            *hv += ov;
        }

        // SwiGLU MLP.
        let hn = self.norm_rows(&h, &b.ffn_norm, ops);
        let mut gi = hn.clone();
        ops.linear_input(layer, LinearSite::Gate, &mut gi, d);
        let mut g = b.gate.apply(&gi, m);
        let mut ui = hn;
        ops.linear_input(layer, LinearSite::Up, &mut ui, d);
        let u = b.up.apply(&ui, m);
        ops.silu(&mut g);
        for (gv, uv) in g.iter_mut().zip(&u) {
            *gv *= uv;
        }
        ops.linear_input(layer, LinearSite::Down, &mut g, c.ffn);
        for (hv, dv) in h.iter_mut().zip(b.down.apply(&g, m)) {
            *hv += dv;
        }

        for (t, &i) in idx.iter().enumerate() {
            x[i * d..(i + 1) * d].copy_from_slice(&h[t * d..(t + 1) * d]);
        }
    }

    /// Next-token logits of every row of `x` (rows × vocab): final RMSNorm, then the LM head.
    pub fn logits(&self, x: &[f32], ops: &dyn Ops) -> Vec<f32> {
        let d = self.config.hidden;
        let rows = x.len() / d;
        let mut hn = self.norm_rows(x, &self.norm, ops);
        ops.linear_input(self.config.layers, LinearSite::Head, &mut hn, d);
        self.head.apply(&hn, rows)
    }

    /// The full forward pass of a fresh sequence (positions 0…n−1, every layer executed): logits
    /// (n × vocab).
    pub fn forward(&self, ids: &[u32], ops: &dyn Ops) -> Result<Vec<f32>, String> {
        let mut x = self.embed(ids)?;
        let positions: Vec<usize> = (0..ids.len()).collect();
        let run = vec![true; ids.len()];
        let mut cache = KvCache::new(self.config.layers);
        for l in 0..self.config.layers {
            self.layer(l, &mut x, &positions, &run, &mut cache, ops);
        }
        Ok(self.logits(&x, ops))
    }

    /// Rewrites the weights of every linear layer in place: `f(layer, site, weights, rows, cols)`
    /// with row-major weights (the LM head is called with layer = `layers`, site `Head`; tied
    /// embeddings keep their values for the lookup).
    pub fn map_weights(&mut self, mut f: impl FnMut(usize, LinearSite, &mut [f32], usize, usize)) {
        for (l, b) in self.blocks.iter_mut().enumerate() {
            for site in LinearSite::BLOCK {
                rewrite(b.linear_mut(site), |w, r, c| f(l, site, w, r, c));
            }
        }
        let layers = self.config.layers;
        rewrite(&mut self.head, |w, r, c| {
            f(layers, LinearSite::Head, w, r, c)
        });
    }

    fn norm_rows(&self, x: &[f32], weight: &[f32], ops: &dyn Ops) -> Vec<f32> {
        let mut out = x.to_vec();
        for row in out.chunks_mut(self.config.hidden) {
            ops.rms_norm(row, self.config.rms_eps);
            for (v, w) in row.iter_mut().zip(weight) {
                *v *= w;
            }
        }
        out
    }
}

fn rewrite(lin: &mut Linear, f: impl FnOnce(&mut [f32], usize, usize)) {
    let (r, c) = (lin.out_features, lin.in_features);
    let mut w = lin.weights();
    f(&mut w, r, c);
    *lin = Linear::new(w, r, c);
}

/// Rows of `x` (`n` rows of `kv_heads · group` heads of `head_dim` values) regrouped per KV head:
/// (kv_heads, group·n, head_dim), the group's heads one after another, each over all `n` rows.
fn by_kv_head(x: &[f32], n: usize, kv_heads: usize, group: usize, head_dim: usize) -> Vec<f32> {
    let width = kv_heads * group * head_dim;
    let mut out = Vec::with_capacity(x.len());
    for head in 0..kv_heads * group {
        for t in 0..n {
            let at = t * width + head * head_dim;
            out.extend_from_slice(&x[at..at + head_dim]);
        }
    }
    out
}

/// `batch` matrix products a (m × k) · b (k × n), or · bᵀ with b (n × k) when `b_transposed`,
/// by candle's CPU matmul: (batch, m, n) row-major.
fn batched_matmul(
    a: &[f32],
    b: &[f32],
    (batch, m, n, k): (usize, usize, usize, usize),
    b_transposed: bool,
) -> Vec<f32> {
    let a = Tensor::from_slice(a, (batch, m, k), &Device::Cpu).expect("a: batch·m·k values");
    let b = if b_transposed {
        Tensor::from_slice(b, (batch, n, k), &Device::Cpu).and_then(|b| b.t())
    } else {
        Tensor::from_slice(b, (batch, k, n), &Device::Cpu)
    }
    .expect("b: batch·k·n values");
    a.matmul(&b)
        .and_then(|y| y.flatten_all())
        .and_then(|y| y.to_vec1())
        .expect("shapes agree")
}

/// cos/sin of the rotary angles pos·θ^(−2i/head_dim), i < head_dim/2.
pub(crate) fn rope_table(pos: usize, head_dim: usize, theta: f32) -> (Vec<f32>, Vec<f32>) {
    (0..head_dim / 2)
        .map(|i| {
            let freq = (theta as f64).powf(-2.0 * i as f64 / head_dim as f64);
            let a = pos as f64 * freq;
            (a.cos() as f32, a.sin() as f32)
        })
        .unzip()
}

/// Rotates adjacent pairs (x₂ᵢ, x₂ᵢ₊₁) of one head by the table's angles.
pub(crate) fn rotate(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    for (i, pair) in head.chunks_mut(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        pair[0] = a * cos[i] - b * sin[i];
        pair[1] = a * sin[i] + b * cos[i];
    }
}
