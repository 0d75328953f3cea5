//! The separate-unit designs in RTL: the lookup-table and piecewise-linear units
//! (`approx_unit.v`, `recip_unit.v`, ROM images written from the Rust operator's own tables), the
//! rest of the integer-polynomial (I-BERT) design (`int_div.v`, `int_sqrt.v`; its GELU and exp
//! lanes are in [`ibert`](super::ibert)), the output multipliers every separate softmax and
//! norm unit has (`mul_round.v`) and the separate-unit QUARK lanes (`quark_sep_lanes.v`).
//! Each is bit-exact with the functions of `ops::baseline` / `ops::quark`.

use std::fmt::Write as _;

use super::super::ops::Prec;
use super::super::ops::baseline::Approx;
use super::Instance;
use super::quark::{a_width, lane_instance, value_width};

/// Width of a row sum of exps or a variance at `prec` (as the QUARK row log2's input).
pub fn row_width(prec: Prec) -> u32 {
    prec.frac() as u32 + 14
}

/// Width of a row reciprocal (up to 2^(2F)).
pub fn recip_width(prec: Prec) -> u32 {
    2 * prec.frac() as u32 + 3
}

fn addr_bits(n: usize) -> u32 {
    (usize::BITS - n.max(2).saturating_sub(1).leading_zeros()).max(1)
}

fn hex(values: &[i64], w: u32) -> String {
    let mask = (1u64 << w) - 1;
    values.iter().fold(String::new(), |mut s, &v| {
        let _ = writeln!(s, "{:x}", (v as u64) & mask);
        s
    })
}

/// Verilog parameter overrides (name, value).
type Params = Vec<(&'static str, i64)>;
/// ROM images (file name, hex text).
type Roms = Vec<(&'static str, String)>;

/// The `approx_unit.v` parameters and ROM images of `table` with `iw`-bit inputs and `vw`-bit
/// values.
fn approx_params(table: &Approx, iw: u32, vw: u32) -> (Params, Roms) {
    let n = table.base.len();
    let linear = table.delta.iter().any(|&d| d != 0);
    let params = vec![
        ("IW", i64::from(iw)),
        ("LO_ABS", table.lo.abs()),
        ("LO_NEG", i64::from(table.lo < 0)),
        ("SHIFT", i64::from(table.shift)),
        ("AB", i64::from(addr_bits(n))),
        ("N", n as i64),
        ("VW", i64::from(vw)),
        ("LINEAR", i64::from(linear)),
    ];
    let mut roms = vec![("rom_base.hex", hex(&table.base, vw))];
    if linear {
        roms.push(("rom_delta.hex", hex(&table.delta, vw)));
    }
    (params, roms)
}

/// `approx_unit.v` evaluating `table` on `iw`-bit signed inputs (an elementwise lane's function
/// over codes, or the softmax exp over code differences), values `value_width(prec)` bits.
pub(crate) fn approx_instance(table: &Approx, prec: Prec, iw: u32) -> Instance {
    let vw = value_width(prec);
    let (params, roms) = approx_params(table, iw, vw);
    Instance {
        module: "approx_unit",
        params,
        inputs: vec![("x", iw)],
        output: ("y", vw + 1, true),
        latency: 3,
        roms,
    }
}

/// `recip_unit.v`: the row 1/y (`sqrt` = false) or 1/√y of the lut/pwl designs, with the
/// mantissa `table` from `ops::baseline::recip_table`.
pub(crate) fn recip_instance(table: &Approx, prec: Prec, sqrt: bool) -> Instance {
    let f = prec.frac();
    let vw = f as u32 + 3;
    let (tparams, roms) = approx_params(table, f as u32 + 3, vw);
    let mut params = vec![
        ("F", i64::from(f)),
        ("YW", i64::from(row_width(prec))),
        ("SQRT", i64::from(sqrt)),
        ("OW", i64::from(recip_width(prec))),
    ];
    params.extend(
        tparams
            .into_iter()
            .filter(|(n, _)| !matches!(*n, "IW" | "LO_ABS" | "LO_NEG")),
    );
    Instance {
        module: "recip_unit",
        params,
        inputs: vec![("y", row_width(prec))],
        output: ("r", recip_width(prec), true),
        latency: 6,
        roms,
    }
}

/// `int_div.v`: floor(2^(2F) / y) over `yw`-bit divisors (I-BERT's integer reciprocal).
pub fn div_instance(prec: Prec, yw: u32) -> Instance {
    let f = prec.frac();
    Instance {
        module: "int_div",
        params: vec![("F", i64::from(f)), ("YW", i64::from(yw))],
        inputs: vec![("y", yw)],
        output: ("q", 2 * f as u32 + 1, false),
        latency: 2 * f as u32 + 2,
        roms: Vec::new(),
    }
}

/// Root width of [`sqrt_instance`] over `yw`-bit inputs.
pub fn root_width(prec: Prec, yw: u32) -> u32 {
    (yw + prec.frac() as u32).div_ceil(2)
}

/// `int_sqrt.v`: floor(√(v·2^F)) over `yw`-bit v (I-BERT's integer square root).
pub fn sqrt_instance(prec: Prec, yw: u32) -> Instance {
    let f = prec.frac();
    let rb = root_width(prec, yw);
    Instance {
        module: "int_sqrt",
        params: vec![
            ("F", i64::from(f)),
            ("YW", i64::from(yw)),
            ("RB", i64::from(rb)),
        ],
        inputs: vec![("v", yw)],
        output: ("root", rb, false),
        latency: rb + 1,
        roms: Vec::new(),
    }
}

/// `mul_round.v` with `aw`- and `bw`-bit operands: the softmax output multiplier (exp × row
/// reciprocal) or the norm output multiplier (centred value × 1/√v).
pub fn mul_instance(prec: Prec, aw: u32, bw: u32) -> Instance {
    let f = prec.frac();
    let yw = 2 * f as u32 + 3;
    Instance {
        module: "mul_round",
        params: vec![
            ("F", i64::from(f)),
            ("AW", i64::from(aw)),
            ("BW", i64::from(bw)),
            ("YW", i64::from(yw)),
        ],
        inputs: vec![("a", aw), ("b", bw)],
        output: ("y", yw, true),
        latency: 1,
        roms: Vec::new(),
    }
}

/// The softmax output multiplier of a separate unit at `prec`: exp (F + 3 bits) × 1/sum.
pub fn softmax_mul_instance(prec: Prec) -> Instance {
    mul_instance(prec, prec.frac() as u32 + 3, recip_width(prec))
}

/// The norm output multiplier of a separate unit at `prec`: centred value × 1/√v.
pub fn norm_mul_instance(prec: Prec) -> Instance {
    mul_instance(prec, value_width(prec), a_width(prec))
}

/// A separate-unit QUARK lane (`quark_softmax_lane` when `softmax`, else `quark_gelu_lane`).
pub fn quark_sep_lane_instance(prec: Prec, softmax: bool) -> Instance {
    let mut inst = lane_instance(prec);
    if softmax {
        inst.module = "quark_softmax_lane";
        inst.inputs[0] = ("sel", 1);
    } else {
        inst.module = "quark_gelu_lane";
        inst.inputs.truncate(2);
        inst.inputs.remove(0);
    }
    inst
}
