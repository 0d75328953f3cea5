//! Service times of each task on the two platforms: the FPGA accelerator (systolic array +
//! nonlinear unit, from the cost model's pipeline depth and II) and the GPU baseline (roofline
//! kernels plus launch overhead).

use super::cost;
use super::ops::Prec;
use super::params::{FpgaBoard, FpgaParams, GpuSpec};
use super::sequencer::Step;
use super::workload::{Kind, Task};

/// Cycles of a matmul on an R×C output-stationary systolic array: each R×C output tile streams
/// k operand beats; the array fills and drains once (R + C) because tiles are double-buffered.
pub fn systolic_cycles(batch: u64, m: u64, k: u64, n: u64, rows: u32, cols: u32) -> u64 {
    batch * m.div_ceil(u64::from(rows)) * n.div_ceil(u64::from(cols)) * k + u64::from(rows + cols)
}

/// MACs per cycle the board's DSPs give at `bits`.
pub fn macs_per_dsp(board: &FpgaBoard, bits: u32) -> u32 {
    if bits <= 4 {
        board.macs_per_dsp_int4
    } else {
        board.macs_per_dsp_int8
    }
}

/// The accelerator's step for `task`.
pub fn fpga_step(p: &FpgaParams, task: &Task) -> Step {
    let hz = p.fpga.clock_mhz * 1e6;
    match task.kind {
        Kind::Matmul { batch, m, k, n, .. } => Step {
            on_array: true,
            service_s: systolic_cycles(batch, m, k, n, p.array_rows, p.array_cols) as f64 / hz,
            weight_bytes: task.weight_bytes(p.bits),
        },
        Kind::Nonlinear { op, rows, len } => {
            let unit = cost::timing(p.design, op, Prec { bits: p.bits }, p.lanes);
            Step {
                on_array: false,
                service_s: unit.cycles(rows, len, p.lanes) as f64 / hz,
                weight_bytes: 0,
            }
        }
    }
}

/// The GPU's kernel for `task` at `dtype_bits` (16: FP16 tensor cores; 8/4: integer), seconds:
/// launch + max(compute, memory).
pub fn gpu_kernel_s(gpu: &GpuSpec, task: &Task, dtype_bits: u32) -> f64 {
    let peak = match dtype_bits {
        16 => gpu.fp16_tflops,
        8 => gpu.int8_tops,
        _ => gpu.int4_tops,
    } * 1e12;
    let bytes = (task.weight_bytes(dtype_bits) + task.activation_bytes(dtype_bits)) as f64;
    let mem_s = bytes / (gpu.mem_gbps * 1e9);
    let compute_s = match task.kind {
        Kind::Matmul { .. } => 2.0 * task.macs() as f64 / (peak * gpu.matmul_efficiency),
        Kind::Nonlinear { .. } => 0.0,
    };
    gpu.launch_us * 1e-6 + compute_s.max(mem_s)
}

/// DSPs of the systolic array at `bits`.
pub fn array_dsp(p: &FpgaParams) -> f64 {
    (f64::from(p.array_rows) * f64::from(p.array_cols)
        / f64::from(macs_per_dsp(&p.fpga, p.bits).max(1)))
    .ceil()
}
