//! Engine-level checks of the `fpga` family: a single op's simulated time is its pipeline
//! latency plus II×(n−1); runs are deterministic; the paper's direction of effect.

use sim::experiment::{Experiment, RunContext};

use super::FpgaExperiment;
use super::cost;
use super::experiment::execute;
use super::ops::{Design, Op, Prec};
use super::params::FpgaParams;
use super::sequencer::Step;

fn preset<T: serde::de::DeserializeOwned>(table: &[(&str, &str)], name: &str) -> T {
    let yaml = table
        .iter()
        .find(|(n, _)| *n == name)
        .expect("preset exists")
        .1;
    serde_norway::from_str(yaml).expect("preset parses")
}

pub(crate) fn params(workload: &str, gpu: &str, design: Design) -> FpgaParams {
    FpgaParams {
        fpga: preset(presets::FPGA, "zcu102"),
        gpu: preset(presets::GPU_BASELINE, gpu),
        workload: preset(presets::FPGA_WORKLOAD, workload),
        design,
        bits: 8,
        lanes: 16,
        array_rows: 32,
        array_cols: 32,
        separate_units: false,
        quality: None,
        lm: None,
    }
}

#[test]
fn single_op_time_is_pipeline_latency_plus_ii_times_beats() {
    let hz = 300e6;
    for (design, op) in [
        (Design::Quark, Op::Gelu),
        (Design::Lut, Op::Softmax),
        (Design::Poly, Op::LayerNorm),
    ] {
        let unit = cost::timing(design, op, Prec::INT8, 16);
        let (rows, len) = (12u64, 128u64);
        let beats = u64::from(unit.passes) * rows * len.div_ceil(16);
        let want_s = (u64::from(unit.depth) + u64::from(unit.ii) * (beats - 1)) as f64 / hz;
        let step = Step {
            on_array: false,
            service_s: unit.cycles(rows, len, 16) as f64 / hz,
            weight_bytes: 0,
        };
        let done = execute(vec![step], Some(19.2)).expect("runs");
        let got = done[0].0.finish_s;
        assert!(
            (got - want_s).abs() < 2e-9,
            "{design:?} {op:?}: {got} vs {want_s}"
        );
    }
}

#[test]
fn runs_are_deterministic_and_print_the_headline_table() {
    let p = params("bert-base", "jetson-nano", Design::Quark);
    let a = FpgaExperiment
        .run(&p, &RunContext::single(9))
        .expect("runs");
    let b = FpgaExperiment
        .run(&p, &RunContext::single(9))
        .expect("runs");
    assert_eq!(a.metrics, b.metrics);
    for w in ["bert-base", "vit-b", "llama-decoder-layer"] {
        for g in ["jetson-nano", "rtx-4090", "a100"] {
            let o = FpgaExperiment
                .run(&params(w, g, Design::Quark), &RunContext::single(9))
                .expect("runs");
            eprintln!(
                "{w} vs {g}: fpga {:.3} ms (nonlinear {:.3}), gpu {:.3} ms (nonlinear {:.3}), speedup {:.2}",
                o.get("fpga_e2e_ms").unwrap(),
                o.get("fpga_nonlinear_ms").unwrap(),
                o.get("gpu_e2e_ms").unwrap(),
                o.get("gpu_nonlinear_ms").unwrap(),
                o.get("speedup_vs_gpu").unwrap()
            );
        }
    }
    for d in Design::ALL {
        for sep in [false, true] {
            let mut p = params("bert-base", "a100", d);
            p.separate_units = sep;
            for bits in [8, 4] {
                p.bits = bits;
                let o = FpgaExperiment
                    .run(&p, &RunContext::single(9))
                    .expect("runs");
                eprintln!(
                    "{} sep={sep} INT{bits}: LUT {:.0} FF {:.0} DSP {:.0} BRAM {:.0}; nonlinear {:.3} ms",
                    d.name(),
                    o.get("nl_lut").unwrap(),
                    o.get("nl_ff").unwrap(),
                    o.get("nl_dsp").unwrap(),
                    o.get("nl_bram").unwrap(),
                    o.get("fpga_nonlinear_ms").unwrap()
                );
            }
        }
    }
}

#[test]
fn design_that_does_not_fit_is_a_clear_error() {
    let mut p = params("bert-base", "a100", Design::Quark);
    p.array_rows = 128;
    p.array_cols = 128;
    let e = FpgaExperiment
        .run(&p, &RunContext::single(9))
        .expect_err("must not fit");
    assert!(e.to_string().contains("does not fit zcu102"), "{e}");
}

#[test]
fn bad_quality_values_name_their_keys() {
    use super::params::QualityParams;
    use sim::validate::Checks;
    let mut p = params("minilm-l6", "a100", Design::Quark);
    let yaml = "{method: none, weight_bits: 8, act_bits: 8, norm_input_bits: 30, sentences: 1}";
    p.quality = Some(serde_norway::from_str::<QualityParams>(yaml).expect("parses"));
    let keys: Vec<String> = Checks::of(&p).into_iter().map(|e| e.path).collect();
    assert_eq!(keys, ["quality.norm_input_bits", "quality.sentences"]);
    let bad = "{method: none, weight_bits: 8, act_bits: 8, norm_output: clip}";
    let e = serde_norway::from_str::<QualityParams>(bad).expect_err("unknown variant");
    assert!(e.to_string().contains("norm_output"), "{e}");
}
