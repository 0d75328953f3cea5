//! The small real transformer DASH's policy runs on, seen layer by layer: hidden states are
//! row-major `tokens × hidden` `f32` matrices.

/// A layer-wise transformer encoder.
pub trait LayerStack {
    /// Number of layers.
    fn layers(&self) -> usize;
    /// Hidden size.
    fn hidden(&self) -> usize;
    /// Hidden states after the embedding of token ids `ids`.
    fn embed(&self, ids: &[u32]) -> Vec<f32>;
    /// Output of layer `l` (0-based) for input states `x`.
    fn layer(&self, l: usize, x: &[f32]) -> Vec<f32>;
}

/// Hidden states of an unskipped run: element `l` is the state after `l` layers (0: embedding).
pub fn trajectory(stack: &dyn LayerStack, ids: &[u32]) -> Vec<Vec<f32>> {
    let mut t = vec![stack.embed(ids)];
    for l in 0..stack.layers() {
        let y = stack.layer(l, &t[l]);
        t.push(y);
    }
    t
}
