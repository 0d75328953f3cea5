//! DASH checks: the hooks leave the plain engine untouched, λ moves the skip ratio the right way,
//! asynchronous evaluation is not slower than synchronous, determinism, and input validation.

use sim::experiment::{Experiment, RunContext, RunOutput};
use sim::validate::Checks;

use super::compensate::Compensation;
use super::measure::measure_on;
use super::params::DashParams;
use super::phone::{DashEngine, small_layer};
use crate::MobileExperiment;
use crate::cost::{CostModel, EngineParams};
use crate::experiment::{Policy, SimResult, simulate, simulate_with};
use crate::params::{ArrivalKind, GovernorChoice, MobileParams, StockParams, WorkloadParams};
use crate::workload::Arrivals;
use minilm::{Dims, MiniLm};
use presets::{LLM, SOC};

fn preset<T: serde::de::DeserializeOwned>(table: &[(&str, &str)], name: &str) -> T {
    serde_norway::from_str(table.iter().find(|(n, _)| *n == name).unwrap().1).unwrap()
}

fn cost() -> CostModel {
    CostModel::new(
        preset(SOC, "pixel-7"),
        preset(LLM, "tinyllama-1.1b-q4"),
        EngineParams::default(),
    )
}

fn small_stack() -> MiniLm {
    let dims = Dims {
        layers: 4,
        hidden: 32,
        heads: 4,
        ffn: 64,
        vocab: 200,
        max_pos: 32,
        eps: 1e-12,
    };
    MiniLm::random(dims, &mut sim::rng::stream(5, "dash-test"))
}

fn sentences(n: usize, seed: u64) -> Vec<Vec<u32>> {
    use rand::Rng as _;
    let mut rng = sim::rng::stream(seed, "dash-test/ids");
    (0..n)
        .map(|_| (0..10).map(|_| rng.random_range(0..200)).collect())
        .collect()
}

fn dash(lambda: f64) -> DashParams {
    DashParams {
        enabled: true,
        lambda,
        epochs: 6,
        learning_rate: 1.0,
        initial_skip: 0.3,
        ..DashParams::default()
    }
}

fn run(plan: Option<DashEngine>, policy: &Policy) -> SimResult {
    simulate_with(
        &cost(),
        policy,
        Arrivals::Closed { think_s: 0.2 },
        vec![(24, 6), (40, 4)],
        sim::rng::stream(3, "arrivals"),
        0.0,
        plan,
        false,
    )
    .unwrap()
}

fn stock() -> Policy {
    Policy::Stock(StockParams::default())
}

#[test]
fn a_plan_that_never_skips_and_costs_nothing_is_the_plain_engine() {
    let plain = simulate(
        &cost(),
        &stock(),
        Arrivals::Closed { think_s: 0.2 },
        vec![(24, 6), (40, 4)],
        sim::rng::stream(3, "arrivals"),
        0.0,
    )
    .unwrap();
    let never = DashEngine::new(vec![vec![false; 6]], true, Compensation::Delta, 0.0, 0.0);
    let d = run(Some(never), &stock());
    assert_eq!(plain.done, d.done);
    assert_eq!(plain.meter.total_j.to_bits(), d.meter.total_j.to_bits());
    assert_eq!(plain.steps, d.steps);
    let s = d.dash.unwrap();
    assert_eq!(
        (s.skipped_token_layers, s.token_layers),
        (0, (24 + 40 + 8) * 22)
    );
}

fn mobile_params() -> MobileParams {
    MobileParams {
        soc: preset(SOC, "pixel-7"),
        llm: preset(LLM, "tinyllama-1.1b-q4"),
        governor: GovernorChoice::Stock,
        workload: WorkloadParams {
            arrivals: ArrivalKind::Closed,
            requests: 2,
            think_s: 0.2,
            rate_per_s: 0.1,
            max_response_tokens: 6,
            fixed_lengths: Some([20, 6]),
            trace_file: None,
        },
        engine: EngineParams::default(),
        stock: StockParams::default(),
        fuse: Default::default(),
        dash: DashParams::default(),
        series_interval_s: 0.0,
    }
}

fn metrics(p: &MobileParams) -> RunOutput {
    MobileExperiment.run(p, &RunContext::single(11)).unwrap()
}

#[test]
fn dash_disabled_is_bit_identical_to_the_plain_run() {
    let plain = metrics(&mobile_params());
    let mut p = mobile_params();
    p.dash = DashParams {
        enabled: false,
        lambda: 0.0,
        asynchronous: false,
        ..DashParams::default()
    };
    let off = metrics(&p);
    assert_eq!(plain.metrics.len(), off.metrics.len());
    for ((a, x), (b, y)) in plain.metrics.iter().zip(&off.metrics) {
        assert_eq!(a, b);
        assert_eq!(x.to_bits(), y.to_bits(), "{a}");
    }
}

#[test]
fn no_skipping_at_huge_lambda_and_more_skipping_at_small_lambda() {
    let m = small_stack();
    let (tr, ev) = (sentences(6, 1), sentences(4, 2));
    let (_, strict) = measure_on(&m, &tr, &ev, &dash(1e6));
    let (_, loose) = measure_on(&m, &tr, &ev, &dash(0.05));
    assert_eq!(strict.skip_ratio, 0.0);
    assert!((strict.quality_cosine - 1.0).abs() < 1e-6);
    assert!(
        loose.skip_ratio > 0.3,
        "skip ratio at λ = 0.05: {}",
        loose.skip_ratio
    );
    assert!(loose.quality_cosine < strict.quality_cosine);
}

#[test]
fn training_and_evaluation_are_deterministic() {
    let m = small_stack();
    let (tr, ev) = (sentences(4, 1), sentences(3, 2));
    let (a, ea) = measure_on(&m, &tr, &ev, &dash(0.5));
    let (b, eb) = measure_on(&m, &tr, &ev, &dash(0.5));
    assert_eq!(a.scorer, b.scorer);
    assert_eq!(ea, eb);
}

#[test]
fn asynchronous_evaluation_is_not_slower_than_synchronous() {
    // the same skip pattern (the second of six small layers skipped), 50 k cycles per evaluation
    let pat = vec![false, true, false, false, false, false];
    let plan = |asy| DashEngine::new(vec![pat.clone()], asy, Compensation::Delta, 50_000.0, 10.0);
    let pinned = Policy::Pinned {
        bounds: vec![],
        table: vec![[[17, 10, 12], [17, 10, 12]]],
    };
    let (a, s) = (
        run(Some(plan(true)), &pinned),
        run(Some(plan(false)), &pinned),
    );
    for (x, y) in a.done.iter().zip(&s.done) {
        assert!(x.end_s - x.start_s <= y.end_s - y.start_s);
    }
    let plain = run(None, &pinned);
    let ends = |r: &SimResult| r.done.last().unwrap().end_s;
    assert!(ends(&a) < ends(&s), "async {} sync {}", ends(&a), ends(&s));
    assert!(ends(&a) < ends(&plain), "skipping saves time");
    let st = a.dash.unwrap();
    assert!(st.exposed_evaluations < st.evaluations);
    assert_eq!(
        s.dash.unwrap().exposed_evaluations,
        s.dash.unwrap().evaluations
    );
}

#[test]
fn phone_layers_follow_the_small_layer_at_the_same_depth() {
    let counts: Vec<usize> = (0..6)
        .map(|s| (0..22).filter(|&j| small_layer(j, 22, 6) == s).count())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 22);
    assert!(counts.iter().all(|&c| c == 3 || c == 4), "{counts:?}");
    assert_eq!(small_layer(21, 22, 6), 5);
    assert_eq!(small_layer(0, 32, 6), 0);
}

#[test]
fn bad_dash_parameters_name_their_keys() {
    let mut p = mobile_params();
    p.dash = DashParams {
        lambda: -1.0,
        initial_skip: 1.5,
        eval_sentences: 0,
        max_tokens: 2,
        ..DashParams::default()
    };
    let keys: Vec<String> = Checks::of(&p).into_iter().map(|e| e.path).collect();
    for k in [
        "dash.lambda",
        "dash.initial_skip",
        "dash.eval_sentences",
        "dash.max_tokens",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
    }
}

#[test]
fn a_dash_run_is_deterministic_and_reports_skipping_on_the_phone() {
    let mut p = mobile_params();
    p.dash = DashParams {
        enabled: true,
        lambda: 0.1,
        epochs: 1,
        train_sentences: 1,
        eval_sentences: 2,
        max_tokens: 4,
        ..DashParams::default()
    };
    let (a, b) = (metrics(&p), metrics(&p));
    assert_eq!(a.metrics, b.metrics);
    let get = |n: &str| a.get(n).unwrap();
    let skip = get("dash_skip_ratio");
    assert!((0.0..=1.0).contains(&skip));
    // the phone follows the measured patterns (relative depth: 22 layers from 6)
    assert!((get("dash_phone_skip_ratio") - skip).abs() < 0.1);
    if get("dash_phone_skip_ratio") > 0.0 {
        assert!(get("dash_tpot_speedup") > 1.0);
    }
}
