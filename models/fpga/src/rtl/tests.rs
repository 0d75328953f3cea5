//! RTL co-simulation against the Rust operators (Icarus Verilog; skipped with a note when it is
//! not installed — `scripts/setup-hw-tools.sh` installs it).

use super::super::fixed::{Fmt, shr_round};
use super::super::ops::{Prec, quark};
use super::quark::{Mode, a_width, exp2_instance, lane, lane_instance, log2_instance};
use super::{Instance, sim};

/// A deterministic 64-bit generator (splitmix64) for the random samples.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// Runs `inst` on `vectors` and asserts every output equals `model`; returns the count, or None
/// (after printing why) when Icarus Verilog is absent.
pub(super) fn cosim(
    inst: &Instance,
    vectors: &[Vec<i64>],
    model: impl Fn(&[i64]) -> i64,
) -> Option<usize> {
    if !sim::available() {
        eprintln!(
            "NOTE: RTL co-simulation of {} skipped: iverilog/vvp not installed (run scripts/setup-hw-tools.sh)",
            inst.module
        );
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let got = sim::run(inst, vectors, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), vectors.len(), "{}: output count", inst.module);
    let mut bad = 0;
    for (v, g) in vectors.iter().zip(&got) {
        let want = model(v);
        if want != *g {
            if bad < 8 {
                eprintln!("{} {:?}: RTL {g} vs Rust {want}", inst.module, v);
            }
            bad += 1;
        }
    }
    assert_eq!(
        bad,
        0,
        "{}: {bad} of {} outputs differ",
        inst.module,
        vectors.len()
    );
    Some(vectors.len())
}

/// Lane vectors (mode, x, a, b) for precision `prec`: GELU over every code at several input
/// scales, softmax passes over every (code, row max) pair, LN mode over random variances.
fn lane_vectors(prec: Prec, exhaustive: bool, rng: &mut Rng) -> Vec<Vec<i64>> {
    let f = prec.frac();
    let bits = prec.bits;
    let codes: Vec<i64> = if exhaustive {
        (Fmt::new(bits, 0).min_code()..=Fmt::new(bits, 0).max_code()).collect()
    } else {
        (0..4000)
            .map(|_| rng.range(Fmt::new(bits, 0).min_code(), Fmt::new(bits, 0).max_code()))
            .collect()
    };
    let mut v = Vec::new();
    // Input scales whose values fit the datapath (sign + 6 integer bits).
    for frac in (bits as i32 - 7).max(1)..=bits as i32 - 1 {
        for &q in &codes {
            v.push(vec![Mode::Gelu as i64, shr_round(q, frac - f), 0, 0]);
        }
    }
    let w = |q: i64| shr_round(q, bits as i32 - 4 - f);
    for (i, &q) in codes.iter().enumerate() {
        let maxes: Vec<i64> = if exhaustive {
            codes.iter().copied().filter(|&m| m >= q).collect()
        } else {
            vec![rng.range(q, Fmt::new(bits, 0).max_code())]
        };
        for m in maxes {
            let ls = quark::log2(rng.range(1 << f, 1i64 << (f + 12)), f);
            let mode = if i % 2 == 0 { Mode::Exp } else { Mode::SmOut };
            v.push(vec![mode as i64, w(q), w(m), ls]);
        }
    }
    let amax = (1i64 << (a_width(prec) - 2)) - 1;
    for _ in 0..codes.len() * 4 {
        let var = rng.range(1, 1i64 << (f + 12));
        v.push(vec![Mode::Rsq as i64, 0, 0, quark::log2(var, f)]);
        let r = quark::rsqrt(var, f).min(amax);
        v.push(vec![
            Mode::Norm as i64,
            rng.range(-(1 << (f + 6)), 1 << (f + 6)),
            r,
            0,
        ]);
    }
    v
}

fn lane_model(f: i32) -> impl Fn(&[i64]) -> i64 {
    move |v: &[i64]| {
        let mode = Mode::ALL[v[0] as usize];
        lane(mode, v[1], v[2], v[3], f)
    }
}

#[test]
fn quark_lane_matches_rust_over_all_int8_codes() {
    let mut rng = Rng(8);
    let v = lane_vectors(Prec::INT8, true, &mut rng);
    if let Some(n) = cosim(&lane_instance(Prec::INT8), &v, lane_model(16)) {
        eprintln!("quark_lane INT8: {n} vectors bit-exact");
    }
}

#[test]
fn quark_lane_matches_rust_at_int4_and_int12() {
    for (prec, exhaustive) in [(Prec::INT4, true), (Prec { bits: 12 }, false)] {
        let mut rng = Rng(u64::from(prec.bits));
        let v = lane_vectors(prec, exhaustive, &mut rng);
        cosim(&lane_instance(prec), &v, lane_model(prec.frac()));
    }
}

#[test]
fn quark_primitives_match_rust() {
    let mut rng = Rng(2);
    for prec in [Prec::INT8, Prec { bits: 12 }] {
        let f = prec.frac();
        let yw = f as u32 + 14;
        let mut ys: Vec<Vec<i64>> = (0..4096).map(|y| vec![y]).collect();
        ys.extend((0..20_000).map(|_| vec![rng.range(0, (1i64 << yw) - 1)]));
        cosim(&log2_instance(prec, yw), &ys, |v| quark::log2(v[0], f));
        let tw = f as u32 + 10;
        let lsh = f as u32 / 2;
        let ts: Vec<Vec<i64>> = (0..20_000)
            .map(|_| vec![rng.range(-(1i64 << (tw - 1)), i64::from(lsh) << f)])
            .collect();
        cosim(&exp2_instance(prec, tw, lsh), &ts, |v| quark::exp2(v[0], f));
    }
}

/// Re-synthesizes every INT8 unit and compares with `models/fpga/rtl/synth.tsv` (exactly under the
/// committed yosys version, within 10 % under another). `SYSIM_WRITE_SYNTH=1` synthesizes every
/// unit and rewrites the file.
#[test]
fn synthesis_matches_the_committed_counts() {
    use super::synth;
    use rayon::prelude::*;
    if !synth::available() {
        eprintln!(
            "NOTE: synthesis check skipped: yosys not installed (run scripts/setup-hw-tools.sh)"
        );
        return;
    }
    let version = synth::version().unwrap_or_default();
    let same_tool = synth::COMMITTED
        .lines()
        .next()
        .is_some_and(|l| l.trim_start_matches("# ") == version);
    let mut lines = vec![format!("# {version}")];
    let write = std::env::var_os("SYSIM_WRITE_SYNTH").is_some();
    // The check re-synthesizes the representative width, INT8 (INT4 rows: rewrite only).
    let units: Vec<_> = synth::units()
        .into_iter()
        .filter(|(name, _)| write || !name.ends_with("_int4"))
        .collect();
    // One yosys process per unit, as many at once as rayon has threads (the test's wall time is
    // yosys's); the results come back in the units' order.
    let results: Vec<_> = units
        .par_iter()
        .map(|(name, inst)| {
            let dir = tempfile::tempdir().expect("temp dir");
            synth::run(inst, dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect();
    for ((name, _), got) in units.iter().zip(results) {
        eprintln!("{}", synth::format_line(name, got));
        lines.push(synth::format_line(name, got));
        if write {
            continue;
        }
        let want = synth::committed(name).unwrap_or_else(|| panic!("{name} not committed"));
        let tol = if same_tool { 0.0 } else { 0.1 };
        for (what, g, w) in [
            ("LUT", got.res.lut, want.res.lut),
            ("FF", got.res.ff, want.res.ff),
            ("DSP", got.res.dsp, want.res.dsp),
            ("BRAM", got.res.bram, want.res.bram),
            ("depth", f64::from(got.depth), f64::from(want.depth)),
        ] {
            assert!(
                (g - w).abs() <= tol * w,
                "{name} {what}: yosys {g} vs committed {w} ({version})"
            );
        }
    }
    if write {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rtl/synth.tsv");
        std::fs::write(path, lines.join("\n") + "\n").expect("write synth.tsv");
    }
}

/// The lane's modes compose into the operators: softmax = max → Exp → sum → log2 → SmOut, and
/// LN mode's Rsq equals the operator's 1/√v (so a bit-exact lane makes a bit-exact operator).
#[test]
fn lane_modes_compose_into_the_quark_operators() {
    use super::super::ops::{Design, Op, apply};
    let prec = Prec::INT8;
    let f = prec.frac();
    let fin = prec.act_fmt();
    let mut rng = Rng(5);
    for _ in 0..200 {
        let row: Vec<i32> = (0..64).map(|_| rng.range(-128, 127) as i32).collect();
        let w = |q: i32| shr_round(i64::from(q), fin.frac - f);
        let m = w(*row.iter().max().expect("row"));
        let s: i64 = row.iter().map(|&q| lane(Mode::Exp, w(q), m, 0, f)).sum();
        let ls = quark::log2(s, f);
        let out = Fmt::new(16, 15);
        let y: Vec<i32> = row
            .iter()
            .map(|&q| out.requantize(lane(Mode::SmOut, w(q), m, ls, f), f))
            .collect();
        assert_eq!(y, apply(Design::Quark, Op::Softmax, prec, &row, fin, out));
        let v = rng.range(1, 1 << (f + 12));
        assert_eq!(
            lane(Mode::Rsq, 0, 0, quark::log2(v, f), f),
            quark::rsqrt(v, f)
        );
    }
}

#[test]
fn reciprocal_multiplier_is_exact_floor_division() {
    use super::ibert::reciprocal_multiplier;
    let d = crate::fixed::konst(std::f64::consts::LN_2, 16);
    let (m, s) = reciprocal_multiplier(d, 23);
    for n in (0..1i64 << 23).step_by(7).chain([(1 << 23) - 1]) {
        assert_eq!(
            (i128::from(n) * i128::from(m)) >> s,
            i128::from(n / d),
            "n = {n}"
        );
    }
}

#[test]
fn ibert_units_match_rust() {
    use super::super::ops::baseline::{i_exp, i_gelu};
    use super::ibert::{exp_instance, gelu_instance};
    for prec in [Prec::INT8, Prec::INT4, Prec { bits: 12 }] {
        let f = prec.frac();
        let bits = prec.bits;
        let mut rng = Rng(u64::from(bits) + 100);
        let lim = 1i64 << (f + 6);
        // every code at every input scale that fits the datapath, then a random sample
        let mut xs: Vec<Vec<i64>> = Vec::new();
        if bits <= 8 {
            for frac in (bits as i32 - 7).max(1)..bits as i32 {
                for q in Fmt::new(bits, 0).min_code()..=Fmt::new(bits, 0).max_code() {
                    xs.push(vec![shr_round(q, frac - f)]);
                }
            }
        }
        xs.extend((0..20_000).map(|_| vec![rng.range(-lim, lim - 1)]));
        cosim(&gelu_instance(prec), &xs, |v| i_gelu(v[0], f));
        let neg: Vec<Vec<i64>> = xs.iter().map(|v| vec![-v[0].abs().min(lim)]).collect();
        cosim(&exp_instance(prec), &neg, |v| i_exp(v[0], f));
    }
}

/// Rows for `row_reduce.v` with `lanes` lanes of `w`-bit signed values: edge rows (all zeros,
/// all maximum, all minimum, alternating extremes, one extreme among zeros) and random rows of
/// 1–8 beats over the full lane range, over small values and of single-sign beats; the last row is 64 beats of
/// maxima, then of minima (near the accumulator's range). Returns (clear, lanes) per beat.
fn row_beats(lanes: usize, w: u32, rng: &mut Rng) -> Vec<(bool, Vec<i64>)> {
    let (lo, hi) = (-(1i64 << (w - 1)), (1i64 << (w - 1)) - 1);
    let mut rows: Vec<Vec<Vec<i64>>> = Vec::new();
    for fill in [0, hi, lo, -1, 1] {
        rows.push(vec![vec![fill; lanes]; 3]);
    }
    rows.push(vec![
        (0..lanes)
            .map(|i| if i % 2 == 0 { hi } else { lo })
            .collect();
        4
    ]);
    for i in 0..lanes {
        for x in [hi, lo] {
            let mut v = vec![0; lanes];
            v[i] = x;
            rows.push(vec![v]);
        }
    }
    for r in 0..3000 {
        let beats = rng.range(1, 8) as usize;
        let row = (0..beats)
            .map(|_| {
                // small values, the full range, or (every third row) a beat of one sign, so
                // that row maxima are also negative and rise or fall across beats
                let (a, b) = match (r % 3, rng.below(3)) {
                    (0, _) => (-300, 300),
                    (1, 0) => (lo, -1),
                    (1, 1) => (0, hi),
                    _ => (lo, hi),
                };
                (0..lanes).map(|_| rng.range(a, b)).collect()
            })
            .collect();
        rows.push(row);
    }
    rows.push(vec![vec![hi; lanes]; 64]);
    rows.push(vec![vec![lo; lanes]; 64]);
    rows.into_iter()
        .flat_map(|row| {
            row.into_iter()
                .enumerate()
                .map(|(k, v)| (k == 0, v))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `row_reduce.v` against [`row_reduce`](super::quark::row_reduce) at INT8 (16 lanes × 23 bits,
/// a 368-bit input) and INT4: both outputs, the running row maximum and row sum, after every beat.
#[test]
fn row_reduce_matches_rust() {
    use super::quark::{row_instance, row_reduce, value_width};
    use super::synth::LANES;
    for prec in [Prec::INT8, Prec::INT4] {
        let inst = row_instance(prec, LANES);
        if !sim::available() {
            eprintln!(
                "NOTE: RTL co-simulation of {} skipped: iverilog/vvp not installed (run scripts/setup-hw-tools.sh)",
                inst.module
            );
            return;
        }
        let w = value_width(prec);
        let mut rng = Rng(u64::from(prec.bits) + 300);
        let beats = row_beats(LANES as usize, w, &mut rng);
        let dir = tempfile::tempdir().expect("temp dir");
        let got =
            sim::run_row_reduce(&inst, w, &beats, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let want = row_reduce(&beats);
        assert_eq!(got.len(), want.len(), "row_reduce: output count");
        let bad: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
        for &i in bad.iter().take(8) {
            eprintln!(
                "row_reduce {:?}: RTL {:?} vs Rust {:?}",
                beats[i], got[i], want[i]
            );
        }
        assert!(
            bad.is_empty(),
            "row_reduce INT{}: {} of {} beats differ",
            prec.bits,
            bad.len(),
            want.len()
        );
        let rows = beats.iter().filter(|b| b.0).count();
        eprintln!(
            "row_reduce INT{}: {rows} rows, {} beats bit-exact (max and sum)",
            prec.bits,
            want.len()
        );
    }
}
