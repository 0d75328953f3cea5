//! BERT's uncased WordPiece tokenizer, written out (Hugging Face `BertTokenizer` /
//! `tokenizers`' `BertNormalizer` + `BertPreTokenizer` + `WordPiece` + `[CLS] … [SEP]`):
//!
//! 1. clean-up: drop NUL, U+FFFD, control (Cc) and format (Cf) characters; whitespace → space;
//! 2. a space on each side of every CJK ideograph;
//! 3. accent stripping: NFD then drop nonspacing marks (Mn), via [`super::unicode`] tables;
//! 4. lowercasing;
//! 5. split on whitespace and isolate every punctuation character (ASCII punctuation or Unicode P*);
//! 6. greedy longest-match-first WordPiece over `vocab.txt` (continuations prefixed `##`); a word
//!    longer than 100 characters or with an unmatchable rest becomes `[UNK]`;
//! 7. truncation to `max_len − 2` pieces, then `[CLS]` … `[SEP]`.
//!
//! Not covered: NFD of Hangul syllables (algorithmic decomposition into jamo) — irrelevant to the
//! English sentences used here. The vocabulary of all-MiniLM-L6-v2 (Apache-2.0) is committed as
//! `data/vocab.txt`.

use std::collections::HashMap;

use super::unicode::{BASE, FORMAT, MARKS, PUNCT};

/// all-MiniLM-L6-v2's `vocab.txt` (30,522 word pieces, uncased BERT vocabulary).
pub const VOCAB: &str = include_str!("data/vocab.txt");

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2 (tokens incl. [CLS]/[SEP]).
pub const MAX_SEQ_LEN: usize = 256;

/// Longest word WordPiece tries before giving `[UNK]` (`max_input_chars_per_word`).
const MAX_WORD_CHARS: usize = 100;

/// An uncased BERT WordPiece tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    ids: HashMap<String, u32>,
    cls: u32,
    sep: u32,
    unk: u32,
}

fn in_ranges(c: char, table: &[(u32, u32)]) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(a, b)| {
            if b < c {
                std::cmp::Ordering::Less
            } else if a > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() || in_ranges(c, PUNCT)
}

/// The base letter of a precomposed character (é → e), or the character itself.
fn base(c: char) -> char {
    match BASE.binary_search_by_key(&(c as u32), |&(a, _)| a) {
        Ok(i) => char::from_u32(BASE[i].1).unwrap_or(c),
        Err(_) => c,
    }
}

/// Steps 1–4: clean-up, CJK spacing, accent stripping, lowercasing.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' || c == '\u{FFFD}' {
            continue;
        }
        if c.is_whitespace() {
            out.push(' ');
            continue;
        }
        if c.is_control() || in_ranges(c, FORMAT) || in_ranges(c, MARKS) {
            continue;
        }
        let c = base(c);
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Step 5: words and isolated punctuation of normalized text.
pub fn pre_tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_whitespace() || is_punct(c) {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            if is_punct(c) {
                words.push(c.to_string());
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

impl Tokenizer {
    /// The tokenizer of all-MiniLM-L6-v2 (the committed [`VOCAB`]).
    pub fn minilm() -> Self {
        Self::from_vocab(VOCAB)
    }

    /// A tokenizer over a `vocab.txt` text (one piece per line, id = line number); `[CLS]`,
    /// `[SEP]` and `[UNK]` fall back to BERT's ids 101, 102, 100 if absent.
    pub fn from_vocab(vocab: &str) -> Self {
        let ids: HashMap<String, u32> = vocab
            .lines()
            .enumerate()
            .map(|(i, l)| (l.trim_end_matches('\r').to_string(), i as u32))
            .collect();
        let get = |k: &str, d: u32| ids.get(k).copied().unwrap_or(d);
        Self {
            cls: get("[CLS]", 101),
            sep: get("[SEP]", 102),
            unk: get("[UNK]", 100),
            ids,
        }
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.ids.len()
    }

    /// Step 6: WordPiece ids of one pre-tokenized word.
    fn word_pieces(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            out.push(self.unk);
            return;
        }
        let mark = out.len();
        let mut start = 0;
        let mut piece = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while end > start {
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.extend(&chars[start..end]);
                if let Some(&id) = self.ids.get(&piece) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                None => {
                    out.truncate(mark);
                    out.push(self.unk);
                    return;
                }
            }
            start = end;
        }
    }

    /// Token ids of `text` without [CLS]/[SEP] and without truncation.
    pub fn pieces(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for w in pre_tokenize(&normalize(text)) {
            self.word_pieces(&w, &mut ids);
        }
        ids
    }

    /// Model input ids: `[CLS]`, the first `max_len − 2` pieces of `text`, `[SEP]`.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut p = self.pieces(text);
        p.truncate(max_len.saturating_sub(2));
        let mut ids = Vec::with_capacity(p.len() + 2);
        ids.push(self.cls);
        ids.extend(p);
        ids.push(self.sep);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_strips_accents_lowercases_and_spaces_cjk() {
        assert_eq!(normalize("Café NAÏVE\tx\u{200B}y"), "cafe naive xy");
        assert_eq!(normalize("日本"), " 日  本 ");
        assert_eq!(
            pre_tokenize("don't stop—now!"),
            ["don", "'", "t", "stop", "—", "now", "!"]
        );
    }

    #[test]
    fn word_pieces_are_greedy_longest_match_with_cls_and_sep() {
        let t = Tokenizer::minilm();
        assert_eq!(t.vocab_size(), 30522);
        // "hello world" → [CLS] hello world [SEP] in bert-base-uncased.
        assert_eq!(
            t.encode("Hello, world!", 256),
            [101, 7592, 1010, 2088, 999, 102]
        );
        let long = "word ".repeat(300);
        let ids = t.encode(&long, 16);
        assert_eq!((ids.len(), ids[0], ids[15]), (16, 101, 102));
        assert_eq!(t.encode(&"x".repeat(101), 8), [101, 100, 102]);
    }
}
