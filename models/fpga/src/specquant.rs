//! SpecQuant (arXiv 2511.11663) and its baselines as plain functions over f32 matrices
//! (row-major, `rows` output channels × `cols` input channels).
//!
//! * RTN: symmetric round-to-nearest, per output channel (weights) or per token (activations).
//! * Smoothing (SmoothQuant): λ_j = max|X_j|^α / max|W_·j|^(1−α); X ← X·diag(λ)^−1,
//!   W ← W·diag(λ), which moves activation outliers into the weights.
//! * SpecQuant: after smoothing, each output channel's weights are split into a low-frequency
//!   part W_FFT (the lowest FFT bins whose cumulative energy reaches the per-channel adaptive
//!   threshold, kept in high precision) and the residual R = W·diag(λ) − W_FFT, which is
//!   quantized with RTN. The paper leaves the exact threshold rule and the storage of W_FFT open
//!   (README.md, "Explanations and disagreements"); we keep W_FFT's kept coefficients at 16 bits.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Quantize→dequantize of `x` with one symmetric scale (max|x| / (2^(bits−1) − 1)).
pub fn fake_quant(x: &mut [f32], bits: u32) {
    let qmax = ((1i32 << (bits - 1)) - 1) as f32;
    let m = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    if m == 0.0 {
        return;
    }
    let s = m / qmax;
    for v in x.iter_mut() {
        *v = (*v / s).round().clamp(-qmax, qmax) * s;
    }
}

/// Per-row (output channel / token) quantize→dequantize of a row-major matrix.
pub fn fake_quant_rows(x: &mut [f32], cols: usize, bits: u32) {
    for row in x.chunks_mut(cols.max(1)) {
        fake_quant(row, bits);
    }
}

/// SmoothQuant factors λ_j per input channel from activation and weight column maxima.
pub fn smooth_factors(act_absmax: &[f32], w: &[f32], cols: usize, alpha: f64) -> Vec<f32> {
    let mut wmax = vec![0.0f32; cols];
    for row in w.chunks(cols) {
        for (m, v) in wmax.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
    act_absmax
        .iter()
        .zip(&wmax)
        .map(|(&a, &wm)| {
            let l = (f64::from(a.max(1e-5)).powf(alpha) / f64::from(wm.max(1e-5)).powf(1.0 - alpha))
                as f32;
            l.clamp(1e-4, 1e4)
        })
        .collect()
}

/// Low-frequency truncation of one channel: keeps FFT bins 0..=k and their mirror images, with
/// k the smallest index whose cumulative (two-sided) energy reaches `energy` of the total.
/// Returns the reconstructed low-frequency part and the number of complex bins kept (k + 1).
pub fn fft_truncate(row: &[f32], energy: f64) -> (Vec<f32>, usize) {
    fft_truncate_capped(row, energy, usize::MAX)
}

/// [`fft_truncate`] keeping at most `max_bins` complex bins (the bit budget of the kept
/// coefficients); `max_bins` 0 keeps nothing (the low-frequency part is zero).
pub fn fft_truncate_capped(row: &[f32], energy: f64, max_bins: usize) -> (Vec<f32>, usize) {
    let n = row.len();
    if n == 0 || max_bins == 0 {
        return (vec![0.0; n], 0);
    }
    let mut planner = FftPlanner::<f64>::new();
    let mut buf: Vec<Complex<f64>> = row
        .iter()
        .map(|&v| Complex::new(f64::from(v), 0.0))
        .collect();
    planner.plan_fft_forward(n).process(&mut buf);
    let power: Vec<f64> = buf.iter().map(|c| c.norm_sqr()).collect();
    let total: f64 = power.iter().sum();
    let half = n / 2;
    let mut k = half;
    let mut acc = 0.0;
    for i in 0..=half {
        acc += power[i]
            + if i != 0 && i != n - i {
                power[n - i]
            } else {
                0.0
            };
        if acc >= energy * total - 1e-12 * total {
            k = i;
            break;
        }
    }
    let k = k.min(max_bins - 1);
    for (i, c) in buf.iter_mut().enumerate() {
        if i.min(n - i) > k {
            *c = Complex::new(0.0, 0.0);
        }
    }
    planner.plan_fft_inverse(n).process(&mut buf);
    (
        buf.iter().map(|c| (c.re / n as f64) as f32).collect(),
        k + 1,
    )
}

/// SpecQuant on a (smoothed) weight matrix: returns the effective weights W_FFT + Q(R) and the
/// average number of complex bins kept per channel.
pub fn specquant_weights(w: &[f32], cols: usize, bits: u32, energy: f64) -> (Vec<f32>, f64) {
    specquant_weights_capped(w, cols, bits, energy, usize::MAX)
}

/// [`specquant_weights`] with at most `max_bins` kept complex bins per channel: the runtime
/// threshold (the energy rule, per channel) bounded by the bit budget of the kept coefficients.
pub fn specquant_weights_capped(
    w: &[f32],
    cols: usize,
    bits: u32,
    energy: f64,
    max_bins: usize,
) -> (Vec<f32>, f64) {
    let mut out = Vec::with_capacity(w.len());
    let mut kept = 0usize;
    let rows = w.len() / cols.max(1);
    for row in w.chunks(cols) {
        let (low, k) = fft_truncate_capped(row, energy, max_bins);
        kept += k;
        let mut resid: Vec<f32> = row.iter().zip(&low).map(|(a, b)| a - b).collect();
        fake_quant(&mut resid, bits);
        out.extend(low.iter().zip(&resid).map(|(a, b)| a + b));
    }
    (out, kept as f64 / rows.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1 + (i as f32 * 0.3).sin())
            .collect()
    }

    #[test]
    fn keeping_all_frequencies_is_the_identity() {
        let x = signal(48);
        let (y, k) = fft_truncate(&x, 1.0);
        assert_eq!(k, 25);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn the_bin_cap_bounds_the_kept_coefficients() {
        let x = signal(64);
        let (_, all) = fft_truncate(&x, 0.999);
        let (y, k) = fft_truncate_capped(&x, 0.999, 3);
        assert!(all > 3 && k == 3);
        let (z, none) = fft_truncate_capped(&x, 0.999, 0);
        assert!(none == 0 && z.iter().all(|v| *v == 0.0));
        // The three lowest bins of the signal, recovered exactly by a second truncation.
        let (y2, _) = fft_truncate_capped(&y, 1.0, 3);
        assert!(y.iter().zip(&y2).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn truncation_keeps_at_least_the_requested_energy() {
        let x = signal(64);
        let (y, k) = fft_truncate(&x, 0.5);
        assert!(k < 33);
        let e = |v: &[f32]| v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>();
        assert!(e(&y) >= 0.5 * e(&x) - 1e-6);
    }

    #[test]
    fn quantize_dequantize_error_is_within_half_a_step() {
        for bits in [4, 8] {
            let x = signal(100);
            let mut y = x.clone();
            fake_quant(&mut y, bits);
            let step =
                x.iter().fold(0.0f32, |a, v| a.max(v.abs())) / ((1 << (bits - 1)) - 1) as f32;
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() <= step / 2.0 + 1e-6);
            }
        }
    }

    #[test]
    fn smoothing_preserves_the_product_and_flattens_outliers() {
        // X·Wᵀ is unchanged by X/λ, W·λ; an activation outlier channel is shrunk.
        let act = [10.0f32, 0.1, 0.2];
        let w = [0.5f32, 0.2, -0.3, 0.1, 0.4, 0.2];
        let l = smooth_factors(&act, &w, 3, 0.5);
        assert!(l[0] > l[1]);
        let x = [10.0f32, 0.1, -0.2];
        for r in w.chunks(3) {
            let plain: f32 = x.iter().zip(r).map(|(a, b)| a * b).sum();
            let smoothed: f32 = (0..3).map(|j| (x[j] / l[j]) * (r[j] * l[j])).sum();
            assert!((plain - smoothed).abs() < 1e-5);
        }
    }

    #[test]
    fn specquant_error_is_below_rtn_on_smooth_channels_with_an_outlier() {
        let cols = 64;
        let mut w: Vec<f32> = (0..8 * cols)
            .map(|i| ((i % cols) as f32 * 0.1).cos())
            .collect();
        for r in 0..8 {
            w[r * cols + 3] += 6.0; // an outlier column (smoothed-in activation outlier)
        }
        let mut rtn = w.clone();
        fake_quant_rows(&mut rtn, cols, 4);
        let (sq, _) = specquant_weights(&w, cols, 4, 0.9);
        let err = |v: &[f32]| v.iter().zip(&w).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
        assert!(
            err(&sq) < err(&rtn),
            "specquant {} vs rtn {}",
            err(&sq),
            err(&rtn)
        );
    }
}
