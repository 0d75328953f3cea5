//! Checks against the reference fixture `data/reference.json` (token ids from Hugging Face
//! `tokenizers`, embeddings from an independent NumPy forward pass; `scripts/minilm_reference.py`).

use serde::Deserialize;

use super::encoder::{Dims, Exact, MiniLm};
use super::eval::cosine;
use super::tokenizer::{MAX_SEQ_LEN, Tokenizer};
use super::weights::locate;

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    #[serde(default)]
    embedding: Vec<f32>,
    #[serde(default)]
    embedding_1layer: Vec<f32>,
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("data/reference.json")).expect("fixture parses")
}

#[test]
fn tokenizer_ids_equal_the_reference_exactly() {
    let t = Tokenizer::minilm();
    let f = fixture();
    assert!(f.cases.len() >= 96);
    for c in &f.cases {
        assert_eq!(t.encode(&c.text, MAX_SEQ_LEN), c.ids, "{:?}", c.text);
    }
}

#[test]
fn embeddings_match_the_reference_when_the_weights_are_present() {
    let f = fixture();
    let refs: Vec<&Case> = f.cases.iter().filter(|c| !c.embedding.is_empty()).collect();
    assert!(refs.len() >= 8);
    let Some(dir) = locate() else {
        // Stand-in path: the same tokens through a random-weight model give unit-norm embeddings.
        let m = MiniLm::random(Dims::minilm(1), &mut sim::rng::stream(1, "minilm"));
        for c in &refs[..2] {
            let e = m.encode(&c.ids, &Exact);
            let n: f32 = e.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-4);
        }
        eprintln!(
            "minilm: real weights not found (run scripts/fetch-minilm.sh or set SYSIM_MINILM_DIR): \
             checked the stand-in path only"
        );
        return;
    };
    let mut m = MiniLm::load(&dir).expect("weights load");
    assert_eq!(m.dims, Dims::minilm(6));
    // The full 6-layer model on the two shortest sentences (debug builds are slow)...
    let mut by_len = refs.clone();
    by_len.sort_by_key(|c| c.ids.len());
    for c in &by_len[..2] {
        let cos = cosine(&m.encode(&c.ids, &Exact), &c.embedding);
        assert!(cos > 0.999, "6 layers, {:?}: cosine {cos}", c.text);
    }
    // ...and the first layer on all of them.
    m.truncate_layers(1);
    for c in &refs {
        let cos = cosine(&m.encode(&c.ids, &Exact), &c.embedding_1layer);
        assert!(cos > 0.999, "1 layer, {:?}: cosine {cos}", c.text);
    }
}
