//! Two-point calibration of the decode step from FUSE's TinyLlama example (arXiv 2507.02135):
//! with the GPU governor at ≈ 424 MHz TPOT is 215.1 ms, with the GPU pinned at 848 MHz it is
//! 126.9 ms. If only the GPU's time scales with its clock, TPOT(f) = G·f_hi/f + N, so the two
//! points give the GPU time G at f_hi and the rest N (CPU host work and memory stalls not hidden
//! under the GPU). [`fit`] then sets the two engine constants that carry G and N: the GEMV
//! efficiency (FLOP/cycle) and the host's per-layer CPU cycles. These are `calibration` figures:
//! no evidence claim checks a number they were fitted to.

use super::cost::CostModel;
use super::soc::Domain;

/// Two decode measurements at two GPU clocks, everything else held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoPoint {
    /// Lower GPU clock, MHz.
    pub f_lo_mhz: f64,
    /// TPOT at the lower clock, milliseconds.
    pub tpot_lo_ms: f64,
    /// Higher GPU clock, MHz.
    pub f_hi_mhz: f64,
    /// TPOT at the higher clock, milliseconds.
    pub tpot_hi_ms: f64,
}

/// FUSE's TinyLlama example on the Pixel 7 (paper §2: governor ≈ 424 MHz → 215.1 ms; 848 MHz →
/// 126.9 ms).
pub const FUSE_TINYLLAMA: TwoPoint = TwoPoint {
    f_lo_mhz: 424.0,
    tpot_lo_ms: 215.1,
    f_hi_mhz: 848.0,
    tpot_hi_ms: 126.9,
};

/// A decode token's time split at one GPU clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Time that scales with the GPU clock, milliseconds.
    pub gpu_ms: f64,
    /// Time that does not, milliseconds.
    pub other_ms: f64,
}

impl TwoPoint {
    /// The split at the higher clock implied by the two points.
    pub fn split(&self) -> Split {
        let r = self.f_hi_mhz / self.f_lo_mhz;
        let gpu_ms = (self.tpot_lo_ms - self.tpot_hi_ms) / (r - 1.0);
        Split {
            gpu_ms,
            other_ms: self.tpot_hi_ms - gpu_ms,
        }
    }
}

/// Decode context of the example (prompt 64, 128 generated tokens: mean position 128).
pub const EXAMPLE_CONTEXT: u64 = 128;

/// The model's own split of one decode token at context `context` with every domain at its top
/// OPP: GPU busy time, and the rest of the token time.
pub fn model_split(cost: &CostModel, context: u64) -> Split {
    let top = Domain::ALL.map(|d| cost.soc.domain(d).len() - 1);
    let steps = cost.decode_steps(context);
    let f = cost.soc.gpu.dvfs.freq_hz(top[1]);
    let gpu_s: f64 = steps.iter().map(|w| w.gpu_cycles / f).sum();
    let (t, _) = cost.run_steps(&steps, top);
    Split {
        gpu_ms: gpu_s * 1e3,
        other_ms: (t - gpu_s) * 1e3,
    }
}

/// The fitted constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// The split the two points imply.
    pub target: Split,
    /// GEMV efficiency that puts the GPU time at `target.gpu_ms`, FLOP/cycle.
    pub gemv_flops_per_cycle: f64,
    /// Host CPU cycles per layer that put the token time at `gpu_ms + other_ms`.
    pub dispatch_cycles_per_layer: f64,
}

/// Fits the GEMV efficiency and the per-layer host cycles of `cost` (CPU and memory at their top
/// OPPs, GPU at `points.f_hi_mhz`, which must be the top GPU OPP) to `points`.
pub fn fit(cost: &CostModel, points: TwoPoint) -> Fit {
    let target = points.split();
    let mut m = cost.clone();
    let now = model_split(&m, EXAMPLE_CONTEXT);
    m.soc.gpu.gemv_flops_per_cycle *= now.gpu_ms / target.gpu_ms;
    let want = target.gpu_ms + target.other_ms;
    let total = |m: &mut CostModel, cycles: f64| {
        m.engine.dispatch_cycles_per_layer = cycles;
        let s = model_split(m, EXAMPLE_CONTEXT);
        s.gpu_ms + s.other_ms
    };
    // bisection: the token time grows monotonically with the host cycles
    let (mut lo, mut hi) = (0.0, 1e9);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if total(&mut m, mid) < want {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Fit {
        target,
        gemv_flops_per_cycle: m.soc.gpu.gemv_flops_per_cycle,
        dispatch_cycles_per_layer: 0.5 * (lo + hi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::tests::model;

    #[test]
    fn the_papers_two_points_split_into_88_ms_gpu_and_39_ms_rest() {
        let s = FUSE_TINYLLAMA.split();
        assert!((s.gpu_ms - 88.2).abs() < 0.05, "{s:?}");
        assert!((s.other_ms - 38.7).abs() < 0.05, "{s:?}");
    }

    #[test]
    fn preset_constants_are_the_fit() {
        let m = model("pixel-7", "tinyllama-1.1b-q4");
        let f = fit(&m, FUSE_TINYLLAMA);
        println!("two-point calibration: {f:?}");
        let rel = |a: f64, b: f64| (a / b - 1.0).abs();
        assert!(
            rel(f.gemv_flops_per_cycle, m.soc.gpu.gemv_flops_per_cycle) < 0.01,
            "refit gemv {} vs preset {}",
            f.gemv_flops_per_cycle,
            m.soc.gpu.gemv_flops_per_cycle
        );
        assert!(
            rel(
                f.dispatch_cycles_per_layer,
                m.engine.dispatch_cycles_per_layer
            ) < 0.01,
            "refit dispatch {} vs default {}",
            f.dispatch_cycles_per_layer,
            m.engine.dispatch_cycles_per_layer
        );
        let s = model_split(&m, EXAMPLE_CONTEXT);
        assert!(
            (s.gpu_ms - 88.2).abs() < 1.0 && (s.other_ms - 38.7).abs() < 1.0,
            "{s:?}"
        );
    }
}
