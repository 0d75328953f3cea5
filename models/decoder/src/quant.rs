//! Symmetric uniform fake quantization (quantize, then dequantize back to f32): per output row for
//! weights, per token row for activations — the hooks a quantization study plugs into
//! [`crate::Decoder::map_weights`] and [`crate::Ops::linear_input`].

/// Quantizes `x` to `bits`-bit signed integers with one scale max|x|/(2^(bits−1) − 1) and back, in
/// place. `bits` must be in 2..=16; an all-zero slice is left unchanged.
pub fn fake_quantize(x: &mut [f32], bits: u32) {
    assert!(
        (2..=16).contains(&bits),
        "fake_quantize: bits {bits} outside 2..=16"
    );
    let qmax = ((1u32 << (bits - 1)) - 1) as f32;
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 {
        return;
    }
    let scale = amax / qmax;
    for v in x {
        *v = (*v / scale).round().clamp(-qmax, qmax) * scale;
    }
}

/// [`fake_quantize`] on each row of `cols` values (per output channel of a weight matrix, or per
/// token of an activation matrix).
pub fn fake_quantize_rows(x: &mut [f32], cols: usize, bits: u32) {
    for row in x.chunks_mut(cols) {
        fake_quantize(row, bits);
    }
}
