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
    std::fs::write(dir.join("tb.v"), testbench(inst, n)).map_err(|e| e.to_string())?;
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
    let out = std::fs::read_to_string(dir.join("out.txt")).map_err(|e| e.to_string())?;
    out.lines()
        .map(|l| l.trim().parse::<i64>().map_err(|e| format!("{l:?}: {e}")))
        .collect()
}
