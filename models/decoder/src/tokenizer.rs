//! Byte-level BPE (GPT-2 style), built from a GGUF's `tokenizer.ggml.tokens` and `.merges`, with
//! SmolLM2's pre-tokenizer (Hugging Face `tokenizers`: `Digits(individual_digits)` then `ByteLevel`
//! with the GPT-2 split pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
//! which is llama.cpp's `smollm` pre-tokenizer). Control tokens (`<|im_start|>`, …) are matched
//! literally first. Checked against Hugging Face `tokenizers` by `scripts/smollm2_reference.py`.
//!
//! Letters are `char::is_alphabetic() && !char::is_numeric()`, an approximation of `\p{L}` that
//! differs only on combining marks with the Other_Alphabetic property (e.g. Indic vowel signs).

use std::collections::HashMap;

/// A byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    ranks: HashMap<(String, String), usize>,
    specials: Vec<(String, u32)>,
    byte_char: [char; 256],
    char_byte: HashMap<char, u8>,
}

/// GGUF `token_type` of control tokens (llama.cpp `LLAMA_TOKEN_TYPE_CONTROL`).
const CONTROL: i32 = 3;
/// GGUF `token_type` of user-defined tokens (`LLAMA_TOKEN_TYPE_USER_DEFINED`).
const USER_DEFINED: i32 = 4;

/// GPT-2's reversible map from bytes to printable characters.
fn byte_chars() -> [char; 256] {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut out = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        out[b as usize] = if printable(b) {
            char::from_u32(b).expect("Latin-1")
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("Latin Extended")
        };
    }
    out
}

impl Tokenizer {
    /// A tokenizer from the vocabulary (id = index), merges ("a b" lines, rank = index) and token
    /// types (GGUF `token_type`; control and user-defined tokens are matched literally).
    pub fn new(tokens: Vec<String>, merges: &[String], types: &[i32]) -> Result<Self, String> {
        let ids: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let mut ranks = HashMap::with_capacity(merges.len());
        for (r, m) in merges.iter().enumerate() {
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| format!("BPE merge {r} ({m:?}) is not two symbols"))?;
            ranks.entry((a.to_string(), b.to_string())).or_insert(r);
        }
        let byte_char = byte_chars();
        let mut specials: Vec<(String, u32)> = types
            .iter()
            .enumerate()
            .filter(|&(_, &t)| t == CONTROL || t == USER_DEFINED)
            .map(|(i, _)| (tokens[i].clone(), i as u32))
            .filter(|(s, _)| !s.is_empty())
            .collect();
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let char_byte = byte_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Ok(Self {
            tokens,
            ids,
            ranks,
            specials,
            byte_char,
            char_byte,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Token ids of `text` (no BOS added, as SmolLM2's tokenizer does).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = self
                .specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            let (plain, special) = match next {
                Some((at, len, id)) => (&rest[..at], Some((len, id, at))),
                None => (rest, None),
            };
            for piece in pre_tokenize(plain) {
                self.bpe(piece, &mut out);
            }
            match special {
                Some((len, id, at)) => {
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => rest = "",
            }
        }
        out
    }

    /// The text of `ids` (bytes of unknown ids are dropped; invalid UTF-8 is replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            let Some(t) = self.tokens.get(id as usize) else {
                continue;
            };
            if self.specials.iter().any(|(_, s)| *s == id) {
                bytes.extend_from_slice(t.as_bytes());
                continue;
            }
            bytes.extend(t.chars().filter_map(|c| self.char_byte.get(&c)));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn bpe(&self, piece: &str, out: &mut Vec<u32>) {
        let mut syms: Vec<String> = piece
            .bytes()
            .map(|b| self.byte_char[b as usize].to_string())
            .collect();
        loop {
            let best = (0..syms.len().saturating_sub(1))
                .filter_map(|i| {
                    self.ranks
                        .get(&(syms[i].clone(), syms[i + 1].clone()))
                        .map(|&r| (r, i))
                })
                .min();
            let Some((_, i)) = best else { break };
            let right = syms.remove(i + 1);
            syms[i].push_str(&right);
        }
        for s in syms {
            match self.ids.get(&s) {
                Some(&id) => out.push(id),
                // Outside the vocabulary: its byte symbols, dropping bytes the vocabulary lacks
                // (SmolLM2 has no symbol for some control bytes; Hugging Face drops them too).
                None => out.extend(
                    s.chars()
                        .filter_map(|c| self.ids.get(&c.to_string()).copied()),
                ),
            }
        }
    }
}

fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric()
}

fn is_other(c: char) -> bool {
    !c.is_whitespace() && !is_letter(c) && !c.is_numeric()
}

/// SmolLM2's pre-tokenization: each digit alone, then the GPT-2 split pattern on the rest.
pub fn pre_tokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_numeric() {
            gpt2_split(&text[start..i], &mut out);
            out.push(&text[i..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    gpt2_split(&text[start..], &mut out);
    out
}

/// The GPT-2 pattern, alternatives tried in order at each position (leftmost-first, like the regex).
fn gpt2_split<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let n = chars.len();
    let at = |k: usize| if k < n { chars[k].0 } else { s.len() };
    let run = |from: usize, pred: &dyn Fn(char) -> bool| {
        let mut j = from;
        while j < n && pred(chars[j].1) {
            j += 1;
        }
        j
    };
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        let next = chars.get(i + 1).map(|p| p.1);
        let end = 'm: {
            if c == '\'' {
                let rest = &s[at(i + 1)..];
                for suffix in ["re", "ve", "ll", "s", "t", "m", "d"] {
                    if rest.starts_with(suffix) {
                        break 'm i + 1 + suffix.len();
                    }
                }
            }
            for class in [is_letter as fn(char) -> bool, char::is_numeric, is_other] {
                if class(c) {
                    break 'm run(i, &class);
                }
                if c == ' ' && next.is_some_and(class) {
                    break 'm run(i + 1, &class);
                }
            }
            // Whitespace: `\s+(?!\S)` keeps the last space for the next word, else `\s+`.
            let j = run(i, &char::is_whitespace);
            if j < n && j - i > 1 { j - 1 } else { j }
        };
        out.push(&s[at(i)..at(end)]);
        i = end;
    }
}

/// A toy vocabulary for tests: the 256 byte symbols, then each word of `words` built by merging its
/// (byte-mapped) characters left to right. Returns (tokens, merges).
pub fn toy_vocab(words: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut tokens: Vec<String> = byte_chars().iter().map(|c| c.to_string()).collect();
    let mut merges = Vec::new();
    let bc = byte_chars();
    for w in words {
        let syms: Vec<String> = w.bytes().map(|b| bc[b as usize].to_string()).collect();
        let mut acc = syms[0].clone();
        for s in &syms[1..] {
            let m = format!("{acc} {s}");
            acc.push_str(s);
            if !merges.contains(&m) {
                merges.push(m);
                tokens.push(acc.clone());
            }
        }
    }
    (tokens, merges)
}
