//! RTL co-simulation against the Rust operators (Icarus Verilog; skipped with a note when it is
//! not installed — `scripts/setup-hw-tools.sh` installs it).

use super::super::fixed::{Fmt, shr_round};
use super::super::ops::{Prec, quark};
use super::quark::{Mode, a_width, exp2_instance, lane, lane_instance, log2_instance};
use super::{Instance, sim};

/// A deterministic 64-bit generator (splitmix64) for the random samples.
pub(super) struct Rng(u64);

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
    assert_eq!(bad, 0, "{}: {bad} of {} outputs differ", inst.module, vectors.len());
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
        v.push(vec![Mode::Norm as i64, rng.range(-(1 << (f + 6)), 1 << (f + 6)), r, 0]);
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

/// Re-synthesizes every unit and compares with `models/fpga/rtl/synth.tsv` (exactly under the
/// committed yosys version, within 10 % under another). `SYSIM_WRITE_SYNTH=1` rewrites the file.
#[test]
fn synthesis_matches_the_committed_counts() {
    use super::synth;
    if !synth::available() {
        eprintln!("NOTE: synthesis check skipped: yosys not installed (run scripts/setup-hw-tools.sh)");
        return;
    }
    let version = synth::version().unwrap_or_default();
    let same_tool = synth::COMMITTED
        .lines()
        .next()
        .is_some_and(|l| l.trim_start_matches("# ") == version);
    let mut lines = vec![format!("# {version}")];
    for (name, inst) in synth::units() {
        let dir = tempfile::tempdir().expect("temp dir");
        let got = synth::run(&inst, dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{}", synth::format_line(&name, got));
        lines.push(synth::format_line(&name, got));
        if std::env::var_os("SYSIM_WRITE_SYNTH").is_some() {
            continue;
        }
        let want = synth::committed(&name).unwrap_or_else(|| panic!("{name} not committed"));
        let tol = if same_tool { 0.0 } else { 0.1 };
        for (what, g, w) in [
            ("LUT", got.lut, want.lut),
            ("FF", got.ff, want.ff),
            ("DSP", got.dsp, want.dsp),
            ("BRAM", got.bram, want.bram),
        ] {
            assert!(
                (g - w).abs() <= tol * w,
                "{name} {what}: yosys {g} vs committed {w} ({version})"
            );
        }
    }
    if std::env::var_os("SYSIM_WRITE_SYNTH").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rtl/synth.tsv");
        std::fs::write(path, lines.join("\n") + "\n").expect("write synth.tsv");
    }
}
