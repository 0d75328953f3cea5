//! The frozen all-MiniLM-L6-v2 encoder (the `minilm` crate's weights) as a batched candle forward:
//! sentences of one common length run together as `[batch, tokens, hidden]` tensors (no padding,
//! so no attention mask), giving the same sentence embeddings as [`minilm::MiniLm::encode`]
//! (mean pooling + L2 normalisation) with gemm matmuls instead of one dot product per output.

use candle_core::{D, Device, Result, Tensor};
use minilm::{Linear, MiniLm, encoder::Norm};

/// Sentences per forward batch (bounds the `[batch, heads, tokens, tokens]` score tensor).
const BATCH: usize = 64;

/// A dense layer `y = x·Wᵀ + b` with `Wᵀ` stored contiguous for the matmul.
struct Dense {
    wt: Tensor,
    b: Tensor,
}

impl Dense {
    fn new(l: &Linear) -> Result<Self> {
        let w = Tensor::from_slice(&l.w, (l.out, l.inp), &Device::Cpu)?;
        Ok(Self {
            wt: w.t()?.contiguous()?,
            b: Tensor::from_slice(&l.b, l.out, &Device::Cpu)?,
        })
    }

    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.wt)?.broadcast_add(&self.b)
    }
}

/// LayerNorm γ, β.
struct Affine {
    gamma: Tensor,
    beta: Tensor,
}

impl Affine {
    fn new(n: &Norm) -> Result<Self> {
        Ok(Self {
            gamma: Tensor::from_slice(&n.gamma, n.gamma.len(), &Device::Cpu)?,
            beta: Tensor::from_slice(&n.beta, n.beta.len(), &Device::Cpu)?,
        })
    }

    /// `(x − mean)/√(var + ε)·γ + β` over the last dimension (population variance, as BERT).
    fn apply(&self, x: &Tensor, eps: f64) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + eps)?.sqrt()?)?
            .broadcast_mul(&self.gamma)?
            .broadcast_add(&self.beta)
    }
}

struct Block {
    qkv: Dense,
    attn_out: Dense,
    ln1: Affine,
    up: Dense,
    down: Dense,
    ln2: Affine,
}

/// MiniLM's layers as candle tensors (built once; embeddings stay in the [`MiniLm`]).
pub struct BatchEncoder<'a> {
    model: &'a MiniLm,
    emb_ln: Affine,
    blocks: Vec<Block>,
}

/// Softmax over the last dimension.
fn softmax(x: &Tensor) -> Result<Tensor> {
    let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

impl<'a> BatchEncoder<'a> {
    /// Tensors of every layer of `model`.
    pub fn new(model: &'a MiniLm) -> Result<Self> {
        let blocks = model
            .layers
            .iter()
            .map(|l| {
                Ok(Block {
                    qkv: Dense::new(&l.qkv)?,
                    attn_out: Dense::new(&l.attn_out)?,
                    ln1: Affine::new(&l.ln1)?,
                    up: Dense::new(&l.up)?,
                    down: Dense::new(&l.down)?,
                    ln2: Affine::new(&l.ln2)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            model,
            emb_ln: Affine::new(&model.emb_ln)?,
            blocks,
        })
    }

    /// Sentence embeddings (row-major `n × hidden`) of `ids`, sentences of one common length
    /// (token ids as from [`minilm::Tokenizer::encode`]). Errors if the lengths differ or exceed
    /// the position table.
    pub fn encode(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(ids.len() * self.model.dims.hidden);
        for chunk in ids.chunks(BATCH) {
            out.extend(self.encode_batch(chunk)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    fn embed(&self, ids: &[Vec<u32>], tokens: usize) -> Result<Tensor> {
        let m = self.model;
        let h = m.dims.hidden;
        if tokens > m.dims.max_pos || ids.iter().any(|s| s.len() != tokens) {
            candle_core::bail!(
                "batch encoder: every sentence needs the same length ≤ {} tokens",
                m.dims.max_pos
            );
        }
        let mut x = Vec::with_capacity(ids.len() * tokens * h);
        for s in ids {
            for (p, &id) in s.iter().enumerate() {
                let t = id as usize % m.dims.vocab.max(1);
                let (w, pe) = (&m.word[t * h..][..h], &m.pos[p * h..][..h]);
                x.extend((0..h).map(|c| w[c] + pe[c] + m.token_type[c]));
            }
        }
        let x = Tensor::from_vec(x, (ids.len() * tokens, h), &Device::Cpu)?;
        self.emb_ln.apply(&x, f64::from(m.dims.eps))
    }

    fn encode_batch(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let d = self.model.dims;
        let (b, s) = (ids.len(), ids[0].len());
        let (h, heads) = (d.hidden, d.heads);
        let hd = h / heads;
        let eps = f64::from(d.eps);
        let scale = 1.0 / (hd as f64).sqrt();
        let mut x = self.embed(ids, s)?;
        for blk in &self.blocks {
            let qkv = blk.qkv.apply(&x)?.reshape((b, s, 3, heads, hd))?;
            let part = |i: usize| -> Result<Tensor> {
                qkv.narrow(2, i, 1)?
                    .squeeze(2)?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
            let ctx = softmax(&scores)?
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * s, h))?;
            let a = blk.ln1.apply(&(&x + blk.attn_out.apply(&ctx)?)?, eps)?;
            let f = blk.down.apply(&blk.up.apply(&a)?.gelu_erf()?)?;
            x = blk.ln2.apply(&(a + f)?, eps)?;
        }
        let mean = x.reshape((b, s, h))?.mean(1)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minilm::{Dims, Exact};

    #[test]
    fn batched_forward_matches_the_reference_encoder() {
        let dims = Dims {
            layers: 2,
            hidden: 16,
            heads: 4,
            ffn: 32,
            vocab: 50,
            max_pos: 12,
            eps: 1e-12,
        };
        let model = MiniLm::random(dims, &mut sim::rng::stream(3, "minilm"));
        let ids: Vec<Vec<u32>> = (0..70u32)
            .map(|i| (0..7).map(|p| (i * 7 + p * 3) % 50).collect())
            .collect();
        let got = BatchEncoder::new(&model).unwrap().encode(&ids).unwrap();
        for (i, s) in ids.iter().enumerate() {
            let want = model.encode(s, &Exact);
            for (g, w) in got[i * 16..(i + 1) * 16].iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "sentence {i}: {g} vs {w}");
            }
        }
        let ragged = vec![vec![1, 2, 3], vec![1, 2]];
        assert!(BatchEncoder::new(&model).unwrap().encode(&ragged).is_err());
    }
}
