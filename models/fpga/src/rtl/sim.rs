//! Co-simulation with Icarus Verilog: a generated testbench streams input vectors into an
//! [`Instance`] one per clock and writes every output; the caller compares with the Rust model.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::Instance;

/// True when `iverilog` and `vvp` are on PATH.
pub fn available() -> bool {
    ["iverilog", "vvp"].iter().all(|t| {
        Command::new(t)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success() || !o.stdout.is_empty())
    })
}

/// The testbench for `inst` over `n` vectors read from `in_<port>.hex`, writing `out.txt`.
fn testbench(inst: &Instance, n: usize) -> String {
    let mut tb = String::from("`timescale 1ns/1ps\nmodule tb;\n  reg clk = 0;\n");
    for (p, w) in &inst.inputs {
        let _ = writeln!(
            tb,
            "  reg [{}:0] v_{p} [0:{}];\n  reg [{}:0] {p};",
            w - 1,
            n - 1,
            w - 1
        );
    }
    let (o, ow, _) = inst.output;
    let _ = writeln!(tb, "  wire [{}:0] {o};", ow - 1);
    let ports: Vec<String> = std::iter::once(".clk(clk)".to_string())
        .chain(inst.inputs.iter().map(|(p, _)| format!(".{p}({p})")))
        .chain(std::iter::once(format!(".{o}({o})")))
        .collect();
    let _ = writeln!(
        tb,
        "  {} {} dut ({});\n  integer i, fd;\n  initial begin",
        inst.module,
        inst.param_list(),
        ports.join(", ")
    );
    for (p, _) in &inst.inputs {
        let _ = writeln!(tb, "    $readmemh(\"in_{p}.hex\", v_{p});");
    }
    let _ = writeln!(
        tb,
        "    fd = $fopen(\"out.txt\", \"w\");\n    for (i = 0; i < {}; i = i + 1) begin",
        n + inst.latency as usize - 1
    );
    for (p, _) in &inst.inputs {
        let _ = writeln!(tb, "      if (i < {n}) {p} = v_{p}[i];");
    }
    let fmt = if inst.output.2 {
        format!("$signed({o})")
    } else {
        o.to_string()
    };
    let _ = writeln!(
        tb,
        "      #1 clk = 1; #1 clk = 0;\n      if (i >= {}) $fwrite(fd, \"%0d\\n\", {fmt});\n    end\n    $fclose(fd);\n    $finish;\n  end\nendmodule",
        inst.latency - 1
    );
    tb
}

/// Simulates `inst` on `vectors` (one row of input values per clock, in the order of
/// `inst.inputs`) inside `dir`, returning the output for each row.
pub fn run(inst: &Instance, vectors: &[Vec<i64>], dir: &Path) -> Result<Vec<i64>, String> {
    let n = vectors.len();
    for (k, (p, w)) in inst.inputs.iter().enumerate() {
        let mask = if *w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
        let text: String = vectors
            .iter()
            .map(|v| format!("{:x}\n", (v[k] as u64) & mask))
            .collect();
        std::fs::write(dir.join(format!("in_{p}.hex")), text).map_err(|e| e.to_string())?;
    }
    let out = simulate(inst, &testbench(inst, n), dir)?;
    out.lines()
        .map(|l| l.trim().parse::<i64>().map_err(|e| format!("{l:?}: {e}")))
        .collect()
}

/// Packs signed `lanes` of `w` bits each into one hex word, lane i at bits [i·w, (i+1)·w).
fn pack_hex(lanes: &[i64], w: u32) -> String {
    let bits: Vec<bool> = lanes
        .iter()
        .flat_map(|&v| (0..w).map(move |b| (v >> b.min(63)) & 1 == 1))
        .collect();
    bits.chunks(4)
        .rev()
        .map(|c| {
            let d = c.iter().rev().fold(0u32, |a, &b| a * 2 + u32::from(b));
            char::from_digit(d, 16).unwrap_or('0')
        })
        .collect()
}

/// Simulates `row_reduce.v` (`inst` from [`quark::row_instance`](super::quark::row_instance)) on
/// `beats` — (clear, lane values) per clock, `w`-bit signed lanes packed into the wide `v` port —
/// inside `dir`, returning both outputs (vmax, acc) after each beat.
pub fn run_row_reduce(
    inst: &Instance,
    w: u32,
    beats: &[(bool, Vec<i64>)],
    dir: &Path,
) -> Result<Vec<(i64, i64)>, String> {
    let n = beats.len();
    let vw = inst.inputs[1].1;
    let clear: String = beats
        .iter()
        .map(|(c, _)| format!("{}\n", u8::from(*c)))
        .collect();
    let v: String = beats.iter().map(|(_, l)| pack_hex(l, w) + "\n").collect();
    std::fs::write(dir.join("in_clear.hex"), clear).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("in_v.hex"), v).map_err(|e| e.to_string())?;
    let aw = inst.output.1;
    let tb = format!(
        "`timescale 1ns/1ps\nmodule tb;\n  reg clk = 0;\n  reg c_m [0:{last}];\n  reg [{vh}:0] v_m [0:{last}];\n  reg clear;\n  reg [{vh}:0] v;\n  wire signed [{wh}:0] vmax;\n  wire signed [{ah}:0] acc;\n  {module} {params} dut (.clk(clk), .clear(clear), .v(v), .vmax(vmax), .acc(acc));\n  integer i, fd;\n  initial begin\n    $readmemh(\"in_clear.hex\", c_m);\n    $readmemh(\"in_v.hex\", v_m);\n    fd = $fopen(\"out.txt\", \"w\");\n    for (i = 0; i < {steps}; i = i + 1) begin\n      if (i < {n}) begin clear = c_m[i]; v = v_m[i]; end\n      #1 clk = 1; #1 clk = 0;\n      if (i >= {skip}) $fwrite(fd, \"%0d %0d\\n\", vmax, acc);\n    end\n    $fclose(fd);\n    $finish;\n  end\nendmodule\n",
        last = n - 1,
        vh = vw - 1,
        wh = w - 1,
        ah = aw - 1,
        module = inst.module,
        params = inst.param_list(),
        steps = n + inst.latency as usize - 1,
        skip = inst.latency - 1,
    );
    let out = simulate(inst, &tb, dir)?;
    out.lines()
        .map(|l| {
            let mut it = l.split_whitespace().map(str::parse::<i64>);
            match (it.next(), it.next()) {
                (Some(Ok(m)), Some(Ok(s))) => Ok((m, s)),
                _ => Err(format!("row_reduce output {l:?}")),
            }
        })
        .collect()
}

/// Writes testbench `tb` and the sources into `dir`, builds with `iverilog`, runs with `vvp` and
/// returns the testbench's `out.txt`.
fn simulate(inst: &Instance, tb: &str, dir: &Path) -> Result<String, String> {
    std::fs::write(dir.join("tb.v"), tb).map_err(|e| e.to_string())?;
    let mut files = vec!["tb.v".to_string()];
    files.extend(inst.write_sources(dir)?);
    let build = Command::new("iverilog")
        .current_dir(dir)
        .args(["-g2005", "-o", "tb.vvp", "-s", "tb"])
        .args(&files)
        .output()
        .map_err(|e| e.to_string())?;
    if !build.status.success() {
        return Err(format!(
            "iverilog: {}",
            String::from_utf8_lossy(&build.stderr)
        ));
    }
    let sim = Command::new("vvp")
        .current_dir(dir)
        .args(["-n", "tb.vvp"])
        .output()
        .map_err(|e| e.to_string())?;
    if !sim.status.success() {
        return Err(format!("vvp: {}", String::from_utf8_lossy(&sim.stderr)));
    }
    std::fs::read_to_string(dir.join("out.txt")).map_err(|e| e.to_string())
}
