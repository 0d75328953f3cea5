//! Synthesis with yosys for AMD UltraScale+ (`synth_xilinx -family xcup`, the ZCU102's
//! XCZU9EG family) and the committed results (`models/fpga/rtl/synth.tsv`), which the cost
//! model reads so that the simulator needs no tools at run time.

use std::path::Path;
use std::process::Command;

use super::super::cost::Resources;
use super::super::ops::baseline as ops_baseline;
use super::super::ops::{Design, Op, Prec};
use super::{Instance, baseline, ibert, quark};

/// The committed synthesis results: one line per [`units`] entry,
/// `name lut ff dsp bram depth` (tab-separated; LUT counts LUT1–LUT6, INV and SRL primitives;
/// depth is yosys `ltp`'s longest register-to-register path in cells — LUTs, MUXF, CARRY4, DSP),
/// after a first line `# yosys <version>`.
pub const COMMITTED: &str = include_str!("../../rtl/synth.tsv");

/// Lanes of the synthesized units (as the cost model's default BERT configuration).
pub const LANES: u32 = 16;

/// One synthesized unit: its resources and its logic depth.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Synth {
    /// LUT / FF / DSP / BRAM.
    pub res: Resources,
    /// Cells on the longest register-to-register path (yosys `ltp`).
    pub depth: u32,
}

/// The synthesized modules: (name, instance). The QUARK shared circuit and I-BERT's lanes at
/// INT8 and INT4; the separate-unit designs (lut, pwl, the rest of poly, separate QUARK lanes) at
/// INT8, the representative width (INT4 figures of those stay the cost model's).
pub fn units() -> Vec<(String, Instance)> {
    let mut v = Vec::new();
    for prec in [Prec::INT8, Prec::INT4] {
        let b = prec.bits;
        v.push((format!("quark_lane_int{b}"), quark::lane_instance(prec)));
        v.push((
            format!("quark_log2_row_int{b}"),
            quark::log2_instance(prec, baseline::row_width(prec)),
        ));
        v.push((
            format!("row_reduce_int{b}"),
            quark::row_instance(prec, LANES),
        ));
        v.push((format!("ibert_gelu_int{b}"), ibert::gelu_instance(prec)));
        v.push((format!("ibert_exp_int{b}"), ibert::exp_instance(prec)));
    }
    let prec = Prec::INT8;
    let fin = prec.act_fmt();
    let iw = prec.bits + 2;
    for design in [Design::Lut, Design::Pwl] {
        let d = design.name();
        let gelu = ops_baseline::act_table(design, Op::Gelu, prec, fin);
        let exp = ops_baseline::exp_table(design, prec, fin);
        v.push((
            format!("{d}_gelu_int8"),
            baseline::approx_instance(&gelu, prec, iw),
        ));
        v.push((
            format!("{d}_exp_int8"),
            baseline::approx_instance(&exp, prec, iw),
        ));
        for sqrt in [false, true] {
            let t = ops_baseline::recip_table(design, prec, sqrt);
            let name = if sqrt { "rsqrt" } else { "recip" };
            v.push((
                format!("{d}_{name}_int8"),
                baseline::recip_instance(&t, prec, sqrt),
            ));
        }
    }
    let rw = baseline::row_width(prec);
    v.push(("poly_div_int8".into(), baseline::div_instance(prec, rw)));
    v.push(("poly_sqrt_int8".into(), baseline::sqrt_instance(prec, rw)));
    v.push((
        "poly_root_div_int8".into(),
        baseline::div_instance(prec, baseline::root_width(prec, rw)),
    ));
    v.push((
        "softmax_mul_int8".into(),
        baseline::softmax_mul_instance(prec),
    ));
    v.push(("norm_mul_int8".into(), baseline::norm_mul_instance(prec)));
    v.push((
        "quark_softmax_lane_int8".into(),
        baseline::quark_sep_lane_instance(prec, true),
    ));
    v.push((
        "quark_gelu_lane_int8".into(),
        baseline::quark_sep_lane_instance(prec, false),
    ));
    v.push((
        "quark_exp2_row_int8".into(),
        quark::exp2_instance(prec, prec.frac() as u32 + 10, prec.frac() as u32 / 2),
    ));
    v
}

/// True when `yosys` is on PATH.
pub fn available() -> bool {
    Command::new("yosys")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Synthesizes `inst` in `dir` and returns its resources (yosys `stat`) and logic depth (`ltp`
/// over every cell but the flip-flops and I/O buffers).
pub fn run(inst: &Instance, dir: &Path) -> Result<Synth, String> {
    let read = format!("read_verilog -defer {}", inst.write_sources(dir)?.join(" "));
    let sets: Vec<String> = inst
        .params
        .iter()
        .map(|(n, v)| format!("-chparam {n} {v}"))
        .collect();
    // -defer: modules are elaborated only with the instance's parameters (and ROM images).
    let script = format!(
        "{read}; hierarchy -top {m} {}; synth_xilinx -family xcup -top {m} -flatten; \
         tee -o stat.txt stat; tee -o ltp.txt ltp -noff t:FD* t:*BUF* %u %n",
        sets.join(" "),
        m = inst.module
    );
    let out = Command::new("yosys")
        .current_dir(dir)
        .args(["-q", "-p", &script])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("yosys: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| e.to_string());
    let depth = read("ltp.txt")?
        .split("length=")
        .nth(1)
        .and_then(|t| t.split(')').next()?.trim().parse().ok())
        .ok_or("yosys ltp: no path length")?;
    Ok(Synth {
        res: parse_stat(&read("stat.txt")?),
        depth,
    })
}

/// Resources from a yosys `stat` listing of Xilinx primitives.
pub fn parse_stat(stat: &str) -> Resources {
    let mut r = Resources::default();
    for line in stat.lines() {
        let mut it = line.split_whitespace();
        let (Some(cell), Some(n)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<f64>() else { continue };
        match cell {
            c if c.starts_with("LUT") || c == "INV" || c.starts_with("SRL") => r.lut += n,
            c if c.starts_with("FD") => r.ff += n,
            c if c.starts_with("DSP48") => r.dsp += n,
            c if c.starts_with("RAMB36") => r.bram += n,
            c if c.starts_with("RAMB18") => r.bram += n / 2.0,
            _ => {}
        }
    }
    r
}

/// The yosys version line (`Yosys 0.23 (git sha1 …)`), if yosys runs.
pub fn version() -> Option<String> {
    let o = Command::new("yosys").arg("-V").output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// One line of [`COMMITTED`].
pub fn format_line(name: &str, s: Synth) -> String {
    let r = s.res;
    format!(
        "{name}\t{}\t{}\t{}\t{}\t{}",
        r.lut, r.ff, r.dsp, r.bram, s.depth
    )
}

/// The committed synthesis of the unit `name`, if synthesized.
pub fn committed(name: &str) -> Option<Synth> {
    COMMITTED.lines().find_map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (f.len() == 6 && f[0] == name).then(|| Synth {
            res: Resources {
                lut: f[1].parse().unwrap_or(0.0),
                ff: f[2].parse().unwrap_or(0.0),
                dsp: f[3].parse().unwrap_or(0.0),
                bram: f[4].parse().unwrap_or(0.0),
            },
            depth: f[5].parse().unwrap_or(0),
        })
    })
}

fn res(name: &str) -> Option<Resources> {
    committed(name).map(|s| s.res)
}

/// The synthesized QUARK shared circuit with `lanes` lanes at `prec`: lanes × the lane, plus the
/// row reductions and the row log2 (per-module synthesis: nothing is shared across lanes, so the
/// sum is what a flat synthesis would give up to cross-boundary optimisation). The reduction
/// trees were synthesized at [`LANES`] lanes and are scaled by (lanes − 1)/([`LANES`] − 1), the
/// count of their two-input cells. None when the precision was not synthesized.
pub fn quark_shared(prec: Prec, lanes: u32) -> Option<Resources> {
    let b = prec.bits;
    let lane = res(&format!("quark_lane_int{b}"))?;
    let log = res(&format!("quark_log2_row_int{b}"))?;
    Some(lane * f64::from(lanes) + log + row_tree(prec, lanes)?)
}

/// The row reductions (max tree, adder tree, accumulator) scaled to `lanes` lanes.
fn row_tree(prec: Prec, lanes: u32) -> Option<Resources> {
    let row = res(&format!("row_reduce_int{}", prec.bits))?;
    Some(row * (f64::from(lanes.max(2) - 1) / f64::from(LANES - 1)))
}

/// The synthesized nonlinear hardware of `design` for BERT's operators (softmax, GELU,
/// LayerNorm) with `lanes` lanes at `prec`: the QUARK shared circuit, or one separate unit per
/// operator — softmax: lanes × (exp + output multiplier) + row reductions + row reciprocal;
/// GELU: lanes × the GELU lane; LayerNorm: lanes × output multiplier + row reductions + row
/// 1/√v (the mean/variance datapath, the same in every design, is the row reductions). `shared`
/// false with QUARK gives its separate-unit design (softmax and GELU lanes cut from the QUARK
/// lane, 1/√v by a row log2 + exp2). None where not synthesized.
pub fn design_bert(design: Design, prec: Prec, lanes: u32, shared: bool) -> Option<Resources> {
    let b = prec.bits;
    let l = f64::from(lanes);
    if design == Design::Quark && shared {
        return quark_shared(prec, lanes);
    }
    let row = row_tree(prec, lanes)?;
    let sm_mul = res(&format!("softmax_mul_int{b}"))?;
    let norm_mul = res(&format!("norm_mul_int{b}"))?;
    let (exp, gelu, recip, rsqrt) = match design {
        Design::Quark => {
            let row_exp = res(&format!("quark_exp2_row_int{b}"))?;
            let row_log = res(&format!("quark_log2_row_int{b}"))?;
            // the softmax lane divides by exp2/log2 itself: no output multiplier
            let sm = res(&format!("quark_softmax_lane_int{b}"))? * l + row + row_log;
            let gelu = res(&format!("quark_gelu_lane_int{b}"))? * l;
            let ln = norm_mul * l + row + row_log + row_exp;
            return Some(sm + gelu + ln);
        }
        Design::Poly => (
            res(&format!("ibert_exp_int{b}"))?,
            res(&format!("ibert_gelu_int{b}"))?,
            res(&format!("poly_div_int{b}"))?,
            res(&format!("poly_sqrt_int{b}"))? + res(&format!("poly_root_div_int{b}"))?,
        ),
        Design::Lut | Design::Pwl => {
            let d = design.name();
            (
                res(&format!("{d}_exp_int{b}"))?,
                res(&format!("{d}_gelu_int{b}"))?,
                res(&format!("{d}_recip_int{b}"))?,
                res(&format!("{d}_rsqrt_int{b}"))?,
            )
        }
    };
    let softmax = (exp + sm_mul) * l + row + recip;
    let layer_norm = norm_mul * l + row + rsqrt;
    Some(softmax + gelu * l + layer_norm)
}
