//! The nonlinear-operator datapaths as synthesizable Verilog (`models/fpga/rtl/*.v`), tied to the
//! bit-accurate Rust operators: every module's constants are computed here with the same
//! [`konst`](super::fixed::konst) the Rust operator uses, Icarus Verilog co-simulates each module
//! against its Rust model ([`sim`]), and yosys synthesizes it for UltraScale+ ([`synth`]).
//!
//! The Verilog templates are hand-written and parameterized by the fractional bits `F`
//! (= 2 × activation bits, [`Prec::frac`](super::ops::Prec::frac)); [`quark::lane_params`] and
//! friends give the parameter values for a precision.

pub mod baseline;
pub mod ibert;
pub mod quark;
pub mod sim;
pub mod synth;

/// The Verilog sources, by file name (hand-written templates kept in `models/fpga/rtl/`).
pub const SOURCES: &[(&str, &str)] = &[
    ("quark_exp2.v", include_str!("../../rtl/quark_exp2.v")),
    ("quark_log2.v", include_str!("../../rtl/quark_log2.v")),
    ("quark_lane.v", include_str!("../../rtl/quark_lane.v")),
    ("row_reduce.v", include_str!("../../rtl/row_reduce.v")),
    ("ibert_gelu.v", include_str!("../../rtl/ibert_gelu.v")),
    ("ibert_exp.v", include_str!("../../rtl/ibert_exp.v")),
    ("approx_unit.v", include_str!("../../rtl/approx_unit.v")),
    ("recip_unit.v", include_str!("../../rtl/recip_unit.v")),
    ("int_div.v", include_str!("../../rtl/int_div.v")),
    ("int_sqrt.v", include_str!("../../rtl/int_sqrt.v")),
    ("mul_round.v", include_str!("../../rtl/mul_round.v")),
    (
        "quark_sep_lanes.v",
        include_str!("../../rtl/quark_sep_lanes.v"),
    ),
];

/// A module instance to simulate or synthesize: the module, its parameter values and its ports.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Verilog module name.
    pub module: &'static str,
    /// Parameter overrides (name, value).
    pub params: Vec<(&'static str, i64)>,
    /// Input ports (name, width in bits), excluding `clk`.
    pub inputs: Vec<(&'static str, u32)>,
    /// The output port (name, width, signed).
    pub output: (&'static str, u32, bool),
    /// Pipeline latency in clock edges from input to output.
    pub latency: u32,
    /// ROM images the module reads with `$readmemh` (file name, hex text), written beside it.
    pub roms: Vec<(&'static str, String)>,
}

impl Instance {
    /// The Verilog parameter override list, `#(.F(16), …)`.
    pub fn param_list(&self) -> String {
        let p: Vec<String> = self
            .params
            .iter()
            .map(|(n, v)| format!(".{n}({v})"))
            .collect();
        format!("#({})", p.join(", "))
    }

    /// Writes the Verilog sources and this instance's ROM images into `dir`; returns the file names.
    pub fn write_sources(&self, dir: &std::path::Path) -> Result<Vec<String>, String> {
        let mut files = Vec::new();
        for (name, text) in SOURCES {
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
            files.push((*name).to_string());
        }
        for (name, text) in &self.roms {
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
        }
        Ok(files)
    }
}
#[cfg(test)]
mod baseline_tests;
#[cfg(test)]
mod tests;
