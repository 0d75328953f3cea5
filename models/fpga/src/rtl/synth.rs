//! Synthesis with yosys for AMD UltraScale+ (`synth_xilinx -family xcup`, the ZCU102's
//! XCZU9EG family) and the committed results (`models/fpga/rtl/synth.tsv`), which the cost
//! model reads so that the simulator needs no tools at run time.

use std::path::Path;
use std::process::Command;

use super::super::cost::Resources;
use super::super::ops::Prec;
use super::{Instance, SOURCES, ibert, quark};

/// The committed synthesis results: one line per [`units`] entry,
/// `name lut ff dsp bram` (tab-separated; LUT counts LUT1–LUT6, INV and SRL primitives), after a
/// first line `# yosys <version>`.
pub const COMMITTED: &str = include_str!("../../rtl/synth.tsv");

/// Lanes of the synthesized units (as the cost model's default BERT configuration).
pub const LANES: u32 = 16;

/// The synthesized modules: (name, instance) at INT8 and INT4.
pub fn units() -> Vec<(String, Instance)> {
    let mut v = Vec::new();
    for prec in [Prec::INT8, Prec::INT4] {
        let b = prec.bits;
        let f = prec.frac() as u32;
        v.push((format!("quark_lane_int{b}"), quark::lane_instance(prec)));
        v.push((
            format!("quark_log2_row_int{b}"),
            quark::log2_instance(prec, f + 14),
        ));
        v.push((
            format!("row_reduce_int{b}"),
            quark::row_instance(prec, LANES),
        ));
        v.push((format!("ibert_gelu_int{b}"), ibert::gelu_instance(prec)));
        v.push((format!("ibert_exp_int{b}"), ibert::exp_instance(prec)));
    }
    v
}

/// True when `yosys` is on PATH.
pub fn available() -> bool {
    Command::new("yosys")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Synthesizes `inst` in `dir` and returns its resources from yosys' `stat`.
pub fn run(inst: &Instance, dir: &Path) -> Result<Resources, String> {
    let mut read = String::from("read_verilog");
    for (name, text) in SOURCES {
        std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
        read.push(' ');
        read.push_str(name);
    }
    let sets: Vec<String> = inst
        .params
        .iter()
        .map(|(n, v)| format!("-set {n} {v}"))
        .collect();
    let script = format!(
        "{read}; chparam {} {m}; synth_xilinx -family xcup -top {m} -flatten; tee -o stat.txt stat",
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
    let stat = std::fs::read_to_string(dir.join("stat.txt")).map_err(|e| e.to_string())?;
    Ok(parse_stat(&stat))
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
pub fn format_line(name: &str, r: Resources) -> String {
    format!("{name}\t{}\t{}\t{}\t{}", r.lut, r.ff, r.dsp, r.bram)
}

/// The committed resources of the unit `name`, if synthesized.
pub fn committed(name: &str) -> Option<Resources> {
    COMMITTED.lines().find_map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (f.len() == 5 && f[0] == name).then(|| Resources {
            lut: f[1].parse().unwrap_or(0.0),
            ff: f[2].parse().unwrap_or(0.0),
            dsp: f[3].parse().unwrap_or(0.0),
            bram: f[4].parse().unwrap_or(0.0),
        })
    })
}

/// The synthesized QUARK shared circuit with `lanes` lanes at `prec`: lanes × the lane, plus the
/// row reductions and the row log2 (per-module synthesis: nothing is shared across lanes, so the
/// sum is what a flat synthesis would give up to cross-boundary optimisation). The reduction
/// trees were synthesized at [`LANES`] lanes and are scaled by (lanes − 1)/([`LANES`] − 1), the
/// count of their two-input cells. None when the precision was not synthesized.
pub fn quark_shared(prec: Prec, lanes: u32) -> Option<Resources> {
    let b = prec.bits;
    let lane = committed(&format!("quark_lane_int{b}"))?;
    let log = committed(&format!("quark_log2_row_int{b}"))?;
    let row = committed(&format!("row_reduce_int{b}"))?;
    let tree = f64::from(lanes.max(2) - 1) / f64::from(LANES - 1);
    Some(lane * f64::from(lanes) + log + row * tree)
}
