//! Resource and timing cost model of the nonlinear units, by bit width, for AMD/Xilinx
//! UltraScale+-class fabric (LUT6 + CARRY8, DSP48E2 27×18, 36 Kb block RAM).
//!
//! Unit costs (sources; "estimate" where we chose a rule of thumb):
//! * w-bit adder/subtractor/accumulator: w LUT + w FF, 1 cycle — one LUT and one carry bit per bit
//!   (UG574 "UltraScale Architecture CLB", CARRY8).
//! * Comparator + select (max): 1.5·w LUT, w FF, 1 cycle — carry-chain compare plus a 2:1 mux per
//!   bit, two muxes per LUT6 (estimate).
//! * a×b multiplier: a DSP48E2 (27×18 signed) per ceil(a/27)·ceil(b/18) when a·b > 100, else in
//!   fabric at a·b/2 + a LUT (estimate after PG108 "Multiplier LogiCORE" LUT-based figures);
//!   3 cycles in DSP (A/M/P registers, UG579), 2 in fabric; a+b FF.
//! * Constant multiply: shift-and-add, one w-bit adder per extra nonzero canonical-signed-digit
//!   of the constant, 1 cycle per two adders (standard CSD multiplier; exact count of digits).
//! * Squarer: as a multiplier of the same widths.
//! * Barrel shifter of w bits over 2^s positions: w·⌈s/2⌉ LUT (a LUT6 is a 4:1 mux), w FF,
//!   1 cycle (estimate).
//! * Leading-one detector of w bits: w LUT, ⌈log2 w⌉ FF, 1 cycle (estimate).
//! * ROM of e entries × w bits: distributed (LUT6 = 64×1, with MUXF7/F8 free up to 256 entries)
//!   w·⌈e/64⌉ LUT when e ≤ 256, else block RAM ⌈e·w/36864⌉ BRAM36 (UG573); 1 cycle (2 in BRAM).
//! * Divider (w-bit restoring array, fully pipelined): w² LUT, w² FF, w cycles (estimate).
//! * Integer square root (digit recurrence, pipelined): w²/2 LUT and FF, w/2 cycles (estimate).
//!
//! A unit is `lanes` copies of a per-lane datapath plus per-unit shared parts (reduction trees,
//! the row-level reciprocal/√ block). Pipeline depth is the sum of component latencies along the
//! path of each pass; the initiation interval is one beat (all lanes) per cycle.
//!
//! **Calibration to synthesis** ([`calibrated_resources`]): the rules above are scaled, per design
//! and per resource, by yosys' count of our Verilog for that design over this model's count, both
//! for BERT's operators at INT8 with 16 lanes (`rtl::synth::design_bert`). At that point the
//! calibrated model equals synthesis by construction; elsewhere (INT4, other lane counts and
//! operator sets) it is the rules' prediction at synthesis' scale.

use serde::{Deserialize, Serialize};

use super::ops::{Design, Op, Prec};

/// FPGA resources of a circuit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// 6-input lookup tables.
    pub lut: f64,
    /// Flip-flops.
    pub ff: f64,
    /// DSP slices (DSP48E2).
    pub dsp: f64,
    /// 36 Kb block RAMs.
    pub bram: f64,
}

impl std::ops::Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources {
            lut: self.lut + o.lut,
            ff: self.ff + o.ff,
            dsp: self.dsp + o.dsp,
            bram: self.bram + o.bram,
        }
    }
}

impl std::ops::Mul<f64> for Resources {
    type Output = Resources;
    fn mul(self, k: f64) -> Resources {
        Resources {
            lut: self.lut * k,
            ff: self.ff * k,
            dsp: self.dsp * k,
            bram: self.bram * k,
        }
    }
}

/// A hardware component with its resources and its latency in cycles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Part {
    /// Resources used.
    pub res: Resources,
    /// Pipeline latency, cycles.
    pub cycles: u32,
}

fn part(lut: f64, ff: f64, dsp: f64, bram: f64, cycles: u32) -> Part {
    Part {
        res: Resources { lut, ff, dsp, bram },
        cycles,
    }
}

fn clog2(x: u32) -> u32 {
    32 - x.max(1).saturating_sub(1).leading_zeros()
}

/// w-bit adder.
pub fn adder(w: u32) -> Part {
    part(w as f64, w as f64, 0.0, 0.0, 1)
}
/// w-bit comparator + select.
pub fn max_cell(w: u32) -> Part {
    part(1.5 * w as f64, w as f64, 0.0, 0.0, 1)
}
/// a×b multiplier.
pub fn mult(a: u32, b: u32) -> Part {
    let (a, b) = (a.max(b), a.min(b));
    if a * b > 100 {
        let dsp = a.div_ceil(27).min(a.div_ceil(18)) * b.div_ceil(18).min(b.div_ceil(27));
        let dsp = dsp.max(1);
        part(0.0, (a + b) as f64, dsp as f64, 0.0, 3)
    } else {
        part((a * b) as f64 / 2.0 + a as f64, (a + b) as f64, 0.0, 0.0, 2)
    }
}
/// Multiply a w-bit value by the constant `c` quantized to `frac` bits (CSD shift-and-add).
pub fn const_mult(w: u32, c: f64, frac: i32) -> Part {
    let digits = csd_digits(super::fixed::konst(c, frac).unsigned_abs());
    let adders = digits.saturating_sub(1);
    part(
        (adders * w) as f64,
        (w * adders.max(1)) as f64,
        0.0,
        0.0,
        adders.div_ceil(2).max(1),
    )
}
/// Nonzero digits of the canonical signed-digit form of `n`.
pub fn csd_digits(mut n: u64) -> u32 {
    let mut d = 0;
    while n != 0 {
        if n & 1 == 1 {
            d += 1;
            n = if n & 2 == 2 { n + 1 } else { n - 1 };
        }
        n >>= 1;
    }
    d
}
/// w-bit barrel shifter over 2^s positions.
pub fn shifter(w: u32, s: u32) -> Part {
    part((w * s.div_ceil(2)) as f64, w as f64, 0.0, 0.0, 1)
}
/// w-bit leading-one detector.
pub fn lod(w: u32) -> Part {
    part(w as f64, clog2(w) as f64, 0.0, 0.0, 1)
}
/// ROM of `entries` × `w` bits.
pub fn rom(entries: u32, w: u32) -> Part {
    if entries <= 256 {
        part((w * entries.div_ceil(64)) as f64, w as f64, 0.0, 0.0, 1)
    } else {
        let bram = (f64::from(entries) * f64::from(w) / 36864.0).ceil();
        part(0.0, w as f64, 0.0, bram, 2)
    }
}
/// w-bit pipelined divider.
pub fn divider(w: u32) -> Part {
    let w2 = f64::from(w * w);
    part(w2, w2, 0.0, 0.0, w)
}
/// w-bit pipelined integer square root.
pub fn sqrt_unit(w: u32) -> Part {
    let h = f64::from(w * w) / 2.0;
    part(h, h, 0.0, 0.0, w / 2)
}

/// A chain of parts in series: resources add, latencies add.
fn chain(parts: &[Part]) -> Part {
    parts.iter().fold(Part::default(), |a, p| Part {
        res: a.res + p.res,
        cycles: a.cycles + p.cycles,
    })
}

/// Parts side by side (same pipeline stage): resources add, latency is the longest.
fn parallel(parts: &[Part]) -> Part {
    parts.iter().fold(Part::default(), |a, p| Part {
        res: a.res + p.res,
        cycles: a.cycles.max(p.cycles),
    })
}

/// A reduction tree over `lanes` inputs of cell `cell`.
fn tree(lanes: u32, cell: Part) -> Part {
    Part {
        res: cell.res * f64::from(lanes.saturating_sub(1)),
        cycles: cell.cycles * clog2(lanes),
    }
}

/// The cost and timing of one nonlinear unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitCost {
    /// Resources of the whole unit (all lanes + shared parts).
    pub res: Resources,
    /// Pipeline depth summed over the unit's passes, cycles.
    pub depth: u32,
    /// Passes over the data per invocation (softmax/norms: 3; elementwise: 1).
    pub passes: u32,
    /// Initiation interval, cycles per beat of `lanes` elements.
    pub ii: u32,
}

impl UnitCost {
    /// Cycles to process `rows` rows of `len` elements on `lanes` lanes: depth + II·(beats − 1).
    pub fn cycles(&self, rows: u64, len: u64, lanes: u32) -> u64 {
        let beats = u64::from(self.passes) * rows * len.div_ceil(u64::from(lanes.max(1)));
        u64::from(self.depth) + u64::from(self.ii) * beats.saturating_sub(1)
    }
}

/// Internal datapath width: integer part (sign + 6 bits) + fraction.
fn width(prec: Prec) -> u32 {
    prec.frac() as u32 + 7
}

/// The exp block of one lane of a separate unit in `design`'s style.
fn exp_block(design: Design, prec: Prec) -> Part {
    let w = width(prec);
    let f = prec.frac();
    match design {
        Design::Lut => rom(1 << prec.lut_addr_bits(), w),
        Design::Pwl => chain(&[
            rom(1 << prec.pwl_seg_bits(), 2 * w),
            mult(w, prec.bits),
            adder(w),
        ]),
        Design::Poly => chain(&[
            const_mult(w, 1.0 / std::f64::consts::LN_2, f),
            const_mult(w, std::f64::consts::LN_2, f),
            adder(w),
            mult(f as u32 + 2, f as u32 + 2),
            const_mult(f as u32 + 2, 0.3585, f),
            adder(w),
            shifter(w, 5),
        ]),
        Design::Quark => quark_exp2(prec),
    }
}

/// QUARK's exp2 unit: log2e multiply, squarer, two constant multiplies, adders, shifter.
fn quark_exp2(prec: Prec) -> Part {
    let w = width(prec);
    let f = prec.frac();
    let r = f as u32 + 1; // the reduced argument r ∈ (−1, 0]: sign + fraction
    chain(&[
        const_mult(w, std::f64::consts::LOG2_E, f),
        mult(r, r),
        parallel(&[const_mult(r, 0.1713, f), const_mult(r, 0.6647, f)]),
        adder(r + 1),
        adder(r + 1),
        shifter(w, 5),
    ])
}

/// QUARK's log2 unit: leading-one detector, normalising shifter, squarer, two constant
/// multiplies, adders.
fn quark_log2(prec: Prec) -> Part {
    let w = width(prec) + 8;
    let f = prec.frac();
    let t = f as u32; // the mantissa fraction t ∈ [0, 1)
    chain(&[
        lod(w),
        shifter(w, clog2(w)),
        mult(t, t),
        parallel(&[const_mult(t, 1.3465, f), const_mult(t, -0.3465, f)]),
        adder(t + 2),
        adder(w),
    ])
}

/// Row-level 1/x (softmax) or 1/√x (norms) block of a separate unit, shared by its lanes.
fn row_block(design: Design, prec: Prec, sqrt: bool) -> Part {
    let w = width(prec) + 8;
    let span = if sqrt { 2 } else { 1 };
    match design {
        Design::Lut => chain(&[
            lod(w),
            shifter(w, clog2(w)),
            rom(span << prec.lut_addr_bits(), w),
            shifter(w, clog2(w)),
        ]),
        Design::Pwl => chain(&[
            lod(w),
            shifter(w, clog2(w)),
            rom(span << prec.pwl_seg_bits(), 2 * w),
            mult(w, w),
            adder(w),
            shifter(w, clog2(w)),
        ]),
        Design::Poly if sqrt => chain(&[sqrt_unit(w), divider(w)]),
        Design::Poly => divider(w),
        Design::Quark => chain(&[quark_log2(prec), quark_exp2(prec)]),
    }
}

/// Elementwise function block (GELU, SiLU, sigmoid, tanh) of one lane of a separate unit.
fn act_block(design: Design, prec: Prec) -> Part {
    let w = width(prec);
    let f = prec.frac();
    match design {
        Design::Lut => rom(1 << prec.lut_addr_bits(), w),
        Design::Pwl => chain(&[
            rom(1 << prec.pwl_seg_bits(), 2 * w),
            mult(w, prec.bits),
            adder(w),
        ]),
        Design::Poly => chain(&[
            const_mult(w, std::f64::consts::FRAC_1_SQRT_2, f),
            max_cell(w),
            adder(w),
            mult(w, w),
            const_mult(w, 0.2888, f),
            adder(w),
            mult(w, w),
        ]),
        Design::Quark => quark_lane(prec),
    }
}

/// One lane of the QUARK shared circuit: two exp2 units, a log2 unit, a multiplier, the
/// subtract/mode muxes (σ(z) = exp2(t1 − log2(1 + exp2(−|z|·log2e))) needs only two exp2
/// because one of the two softmax terms is exp2(0) = 1).
fn quark_lane(prec: Prec) -> Part {
    let w = width(prec);
    chain(&[
        adder(w),
        quark_exp2(prec),
        quark_log2(prec),
        adder(w),
        quark_exp2(prec),
        mult(w, w),
        // Mode multiplexers: 4:1 on three operand buses (one LUT6 per bit each).
        part(3.0 * w as f64, 0.0, 0.0, 0.0, 0),
    ])
}

/// One lane of a QUARK-primitive unit dedicated to one op (no sharing): softmax needs one
/// exp2 (reused by its two passes) and the output multiplier-free path; σ-based ops need the
/// full two-exp2 + log2 + multiply lane; the norms need a subtractor and two multipliers.
fn quark_dedicated_lane(op: Op, prec: Prec) -> Part {
    let w = width(prec);
    match op {
        Op::Softmax | Op::Exp => chain(&[adder(prec.bits + 1), quark_exp2(prec), adder(w)]),
        Op::LayerNorm | Op::RmsNorm => chain(&[adder(w), mult(w, w), mult(w, w)]),
        Op::Reciprocal | Op::Rsqrt => chain(&[quark_log2(prec), quark_exp2(prec)]),
        Op::Gelu | Op::Silu | Op::Sigmoid | Op::Tanh => chain(&[
            const_mult(w, 1.702, prec.frac()),
            quark_exp2(prec),
            quark_log2(prec),
            adder(w),
            quark_exp2(prec),
            mult(w, w),
        ]),
    }
}

/// Cost of a separate unit dedicated to `op` in `design`'s style with `lanes` lanes (for
/// [`Design::Quark`]: a unit built from QUARK's primitives but serving only `op`).
pub fn separate_unit(design: Design, op: Op, prec: Prec, lanes: u32) -> UnitCost {
    let w = width(prec);
    let l = f64::from(lanes);
    let acc = w + clog2(lanes) + 8;
    let lane_of = |generic: Part| {
        if design == Design::Quark {
            quark_dedicated_lane(op, prec)
        } else {
            generic
        }
    };
    let (lane, shared, passes) = match op {
        Op::Softmax => (
            lane_of(chain(&[
                adder(prec.bits + 1),
                exp_block(design, prec),
                mult(w, w),
            ])),
            chain(&[
                tree(lanes, max_cell(prec.bits)),
                tree(lanes, adder(acc)),
                adder(acc),
                row_block(design, prec, false),
            ]),
            3,
        ),
        Op::LayerNorm | Op::RmsNorm => (
            lane_of(chain(&[adder(w), mult(w, w), mult(w, w)])),
            chain(&[
                tree(lanes, adder(acc)),
                tree(lanes, adder(2 * w)),
                const_mult(2 * w, 1.0 / 768.0, 24),
                row_block(design, prec, true),
            ]),
            3,
        ),
        Op::Exp => (exp_block(design, prec), Part::default(), 1),
        Op::Reciprocal | Op::Rsqrt => {
            (row_block(design, prec, op == Op::Rsqrt), Part::default(), 1)
        }
        Op::Gelu | Op::Silu | Op::Sigmoid | Op::Tanh => {
            (act_block(design, prec), Part::default(), 1)
        }
    };
    UnitCost {
        res: lane.res * l + shared.res,
        depth: lane.cycles + shared.cycles,
        passes,
        ii: 1,
    }
}

/// Cost of the one QUARK shared circuit (all ops) with `lanes` lanes: lanes × [`quark_lane`]
/// plus the max tree, the adder tree and the row-level log2/exp2 of the LN/softmax modes.
pub fn quark_shared(prec: Prec, lanes: u32) -> Resources {
    let w = width(prec);
    let acc = w + clog2(lanes) + 8;
    let shared = chain(&[
        tree(lanes, max_cell(prec.bits)),
        tree(lanes, adder(2 * w)),
        adder(acc),
        const_mult(2 * w, 1.0 / 768.0, 24),
        quark_log2(prec),
    ]);
    quark_lane(prec).res * f64::from(lanes) + shared.res
}

/// Timing of `op` on the QUARK shared circuit with `lanes` lanes. The pipeline depth is the RTL's
/// (`rtl/quark_lane.v`, `row_reduce.v`, `quark_log2.v` latencies), not the component rules.
pub fn quark_timing(op: Op, prec: Prec, lanes: u32) -> UnitCost {
    use super::rtl::quark as rtl;
    let lane = rtl::lane_instance(prec).latency;
    let row = rtl::row_instance(prec, lanes).latency
        + rtl::log2_instance(prec, super::rtl::baseline::row_width(prec)).latency;
    let (depth, passes) = if op.is_row() {
        (lane + row, 3)
    } else {
        (lane, 1)
    };
    UnitCost {
        res: quark_shared(prec, lanes),
        depth,
        passes,
        ii: 1,
    }
}

/// Timing of `op` on `design` (the unit that executes it).
pub fn timing(design: Design, op: Op, prec: Prec, lanes: u32) -> UnitCost {
    match design {
        Design::Quark => quark_timing(op, prec, lanes),
        _ => separate_unit(design, op, prec, lanes),
    }
}

/// Total nonlinear hardware of `design` for the op set `ops`: the sum of one dedicated unit per
/// op for the separate styles (and for QUARK primitives when `shared` is false), or the one
/// shared circuit for QUARK.
pub fn nonlinear_resources(
    design: Design,
    ops: &[Op],
    prec: Prec,
    lanes: u32,
    shared: bool,
) -> Resources {
    match design {
        Design::Quark if shared => quark_shared(prec, lanes),
        _ => ops
            .iter()
            .map(|&op| separate_unit(design, op, prec, lanes).res)
            .fold(Resources::default(), |a, b| a + b),
    }
}

/// BERT-base's operator set, the one the designs were synthesized for.
pub const BERT_OPS: [Op; 3] = [Op::Softmax, Op::Gelu, Op::LayerNorm];

/// Per-resource factors yosys ÷ rules for `design` (`shared`: QUARK's one circuit), fitted on
/// BERT's operators at INT8 with 16 lanes; 1 where either side is zero or not synthesized.
pub fn calibration(design: Design, shared: bool) -> Resources {
    let (prec, lanes) = (Prec::INT8, super::rtl::synth::LANES);
    let ours = nonlinear_resources(design, &BERT_OPS, prec, lanes, shared);
    let synth = super::rtl::synth::design_bert(design, prec, lanes, shared).unwrap_or(ours);
    let k = |s: f64, o: f64| if s > 0.0 && o > 0.0 { s / o } else { 1.0 };
    Resources {
        lut: k(synth.lut, ours.lut),
        ff: k(synth.ff, ours.ff),
        dsp: k(synth.dsp, ours.dsp),
        bram: k(synth.bram, ours.bram),
    }
}

/// [`nonlinear_resources`] scaled by [`calibration`].
pub fn calibrated_resources(
    design: Design,
    ops: &[Op],
    prec: Prec,
    lanes: u32,
    shared: bool,
) -> Resources {
    let r = nonlinear_resources(design, ops, prec, lanes, shared);
    let k = calibration(design, shared);
    Resources {
        lut: r.lut * k.lut,
        ff: r.ff * k.ff,
        dsp: r.dsp * k.dsp,
        bram: r.bram * k.bram,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csd_digit_counts() {
        assert_eq!(csd_digits(0b111), 2); // 8 − 1
        assert_eq!(csd_digits(0b101), 2);
        assert_eq!(csd_digits(1), 1);
    }

    #[test]
    fn shared_design_uses_fewer_resources_than_separate_units() {
        for prec in [Prec::INT8, Prec::INT4] {
            // The same QUARK primitives, shared by all ops vs one dedicated unit per op.
            let shared = nonlinear_resources(Design::Quark, &BERT_OPS, prec, 16, true);
            let sep = nonlinear_resources(Design::Quark, &BERT_OPS, prec, 16, false);
            assert!(
                shared.lut < sep.lut && shared.ff < sep.ff && shared.dsp <= sep.dsp,
                "INT{}: shared {shared:?} vs separate {sep:?}",
                prec.bits
            );
        }
    }

    #[test]
    fn calibrated_model_equals_synthesis_where_fitted_and_scales_elsewhere() {
        for design in Design::ALL {
            let synth = crate::rtl::synth::design_bert(design, Prec::INT8, 16, true)
                .expect("INT8 BERT units are committed");
            let model = calibrated_resources(design, &BERT_OPS, Prec::INT8, 16, true);
            assert!(
                (model.lut - synth.lut).abs() < 1e-6 * synth.lut
                    && (model.dsp - synth.dsp).abs() <= 1e-6 * synth.dsp,
                "{design:?}: {model:?} vs {synth:?}"
            );
            // More lanes cost more, in the calibrated model as in the rules.
            let wide = calibrated_resources(design, &BERT_OPS, Prec::INT8, 32, true);
            assert!(wide.lut > model.lut, "{design:?}");
        }
    }

    #[test]
    fn op_time_is_depth_plus_ii_times_beats() {
        let u = timing(Design::Quark, Op::Gelu, Prec::INT8, 16);
        assert_eq!(u.cycles(1, 16, 16), u64::from(u.depth));
        assert_eq!(u.cycles(1, 16 * 100, 16), u64::from(u.depth) + 99);
        let s = timing(Design::Lut, Op::Softmax, Prec::INT8, 16);
        assert_eq!(s.cycles(4, 32, 16), u64::from(s.depth) + 3 * 4 * 2 - 1);
    }
}
