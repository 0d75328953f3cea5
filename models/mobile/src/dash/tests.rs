//! DASH checks: the hooks leave the plain engine untouched, a never-skipping rollout is the
//! decoder's own forward, λ moves the skip ratio the right way, asynchronous evaluation is not
//! slower than synchronous, determinism, and input validation (on the random stand-in decoder).

use sim::experiment::{Experiment, RunContext, RunOutput};
use sim::validate::Checks;

use super::compensate::{Compensation, Compensator};
use super::measure::measure;
use super::params::{DashParams, Weights};
use super::phone::DashEngine;
use super::rollout::{Mode, rollout, trajectory, unskipped};
use super::train::{evaluate, train};
use crate::MobileExperiment;
use crate::cost::{CostModel, EngineParams};
use crate::experiment::{Policy, SimResult, simulate, simulate_with};
use crate::params::{ArrivalKind, GovernorChoice, MobileParams, StockParams, WorkloadParams};
use crate::workload::Arrivals;
use decoder::LinearSite;
use presets::{LLM, SOC};
use rand::Rng as _;

fn preset<T: serde::de::DeserializeOwned>(table: &[(&str, &str)], name: &str) -> T {
    serde_norway::from_str(table.iter().find(|(n, _)| *n == name).unwrap().1).unwrap()
}

fn cost() -> CostModel {
    CostModel::new(
        preset(SOC, "pixel-7"),
        preset(LLM, "smollm2-135m-q4_1"),
        EngineParams::default(),
    )
}

/// Small DASH settings on the random stand-in decoder.
fn dash(lambda: f64) -> DashParams {
    DashParams {
        enabled: true,
        lambda,
        epochs: 4,
        learning_rate: 1.0,
        initial_skip: 0.3,
        train_windows: 6,
        train_window_tokens: 12,
        eval_tokens: 40,
        eval_window_tokens: 20,
        batch_windows: 1,
        weights: Weights::Random,
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
    let never = DashEngine::new(vec![vec![false; 30]], true, Compensation::Delta, 0.0, 0.0);
    let d = run(Some(never), &stock());
    assert_eq!(plain.done, d.done);
    assert_eq!(plain.meter.total_j.to_bits(), d.meter.total_j.to_bits());
    assert_eq!(plain.steps, d.steps);
    let s = d.dash.unwrap();
    assert_eq!(
        (s.skipped_token_layers, s.token_layers),
        (0, (24 + 40 + 8) * 30)
    );
}

fn mobile_params() -> MobileParams {
    MobileParams {
        soc: preset(SOC, "pixel-7"),
        llm: preset(LLM, "smollm2-135m-q4_1"),
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

/// A random decoder of `layers` layers (hidden 32, 2 heads, words "ab" and "cd"), drawn from the
/// stream `(seed, label)`; `name` keeps each test's temporary GGUF apart (tests run in parallel).
pub(super) fn tiny_decoder(
    name: &str,
    layers: usize,
    seed: u64,
    label: &str,
) -> (decoder::Decoder, decoder::Tokenizer) {
    let path = std::env::temp_dir().join(format!("sysim-dash-{name}-{}.gguf", std::process::id()));
    let c = decoder::Config {
        layers,
        hidden: 32,
        heads: 2,
        kv_heads: 1,
        ffn: 64,
        vocab: 0,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
    };
    decoder::gguf::write_random(&path, &c, &["ab", "cd"], &mut sim::rng::stream(seed, label))
        .unwrap();
    let m = decoder::Decoder::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    m
}

#[test]
fn a_rollout_that_never_skips_is_the_decoders_own_forward() {
    let (m, tok) = tiny_decoder("rollout", 3, 2, "t");
    let windows = vec![tok.encode("abcd dcba abab"), tok.encode("cd cd ab")];
    let mut comp = Compensator::identity(3, 32);
    comp.alpha = vec![0.5; 3];
    let comp = comp.with_mode(Compensation::Delta);
    let mode = Mode {
        asynchronous: true,
        compensation: &comp,
        keep_features: true,
    };
    let r = rollout(&m, &windows, mode, &mut |_| false).unwrap();
    let mut fin = Vec::new();
    for ids in &windows {
        let run = decoder::skip::run(&m, ids, &mut |_, _, _| {}, &decoder::Exact).unwrap();
        fin.extend(run.0);
    }
    let diff = r
        .out
        .iter()
        .zip(&fin)
        .fold(0.0f32, |a, (x, y)| a.max((x - y).abs()));
    assert!(diff < 1e-4, "{diff}");
    assert_eq!(trajectory(&m, &windows).unwrap().last().unwrap(), &r.out);
    assert_eq!(r.decisions.len(), fin.len() / 32);
    assert!(r.decisions.iter().flatten().all(|d| d.features.len() == 5));
    // skipping every layer with no compensation leaves the embedding
    let identity = comp.with_mode(Compensation::None);
    let none = Mode {
        compensation: &identity,
        ..mode
    };
    let all = rollout(&m, &windows, none, &mut |_| true).unwrap();
    let embedded: Vec<f32> = windows.iter().flat_map(|w| m.embed(w).unwrap()).collect();
    assert_eq!(all.out, embedded);
    assert!(all.decisions.iter().flatten().all(|d| d.skip));
}

#[test]
fn no_skipping_at_huge_lambda_and_more_skipping_at_small_lambda() {
    let strict = measure(&dash(1e6), 0).unwrap();
    let loose = measure(
        &DashParams {
            learning_rate: 3.0,
            epochs: 8,
            ..dash(0.0)
        },
        0,
    )
    .unwrap();
    assert_eq!(strict.eval.skip_ratio, 0.0);
    assert!(strict.eval.quality.mean_kl().abs() < 1e-9);
    assert_eq!(strict.eval.quality.top1(), 1.0);
    assert!(
        loose.eval.skip_ratio > 0.3,
        "skip ratio at λ = 0: {}",
        loose.eval.skip_ratio
    );
    assert!(loose.eval.quality.mean_kl() > strict.eval.quality.mean_kl());
    assert_eq!(strict.eval.layer_skip.len(), 30);
}

#[test]
fn training_and_evaluation_are_deterministic() {
    let (a, b) = (
        measure(&dash(0.5), 0).unwrap(),
        measure(&dash(0.5), 0).unwrap(),
    );
    let scorer = |m: &super::measure::Measured| m.trained.as_ref().map(|t| t.scorer.clone());
    assert_eq!(scorer(&a), scorer(&b));
    assert_eq!(a.eval, b.eval);
}

#[test]
fn asynchronous_evaluation_is_not_slower_than_synchronous() {
    // the same skip pattern (every fifth of the 30 layers skipped), 50 k cycles per evaluation
    let pat: Vec<bool> = (0..30).map(|l| l % 5 == 1).collect();
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
fn bad_dash_parameters_name_their_keys() {
    let mut p = mobile_params();
    p.dash = DashParams {
        lambda: -1.0,
        initial_skip: 1.5,
        train_windows: 0,
        eval_window_tokens: 2,
        ..DashParams::default()
    };
    let keys: Vec<String> = Checks::of(&p).into_iter().map(|e| e.path).collect();
    for k in [
        "dash.lambda",
        "dash.initial_skip",
        "dash.train_windows",
        "dash.eval_window_tokens",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
    }
}

#[test]
fn a_dash_run_is_deterministic_and_reports_skipping_on_the_phone() {
    let mut p = mobile_params();
    p.dash = DashParams {
        epochs: 1,
        ..dash(0.1)
    };
    let (a, b) = (metrics(&p), metrics(&p));
    assert_eq!(a.metrics, b.metrics);
    let get = |n: &str| a.get(n).unwrap();
    let skip = get("dash_skip_ratio");
    assert!((0.0..=1.0).contains(&skip));
    // the phone's layers follow the decoder's decisions one for one
    assert!((get("dash_phone_skip_ratio") - skip).abs() < 0.2);
    assert!(get("dash_perplexity") > 1.0 && get("dash_eval_tokens") >= 38.0);
    let mut wrong = p.clone();
    wrong.llm = preset(LLM, "tinyllama-1.1b-q4");
    let e = MobileExperiment
        .run(&wrong, &RunContext::single(11))
        .unwrap_err();
    assert!(e.to_string().contains("smollm2-135m-q4_1"), "{e}");
    if get("dash_phone_skip_ratio") > 0.0 {
        assert!(get("dash_tpot_speedup") > 1.0);
    }
}

#[test]
fn the_greedy_oracle_runs_its_static_set_within_the_perplexity_bound() {
    let p = DashParams {
        policy: super::params::PolicyKind::GreedyOracle,
        oracle_tokens: 40,
        oracle_greedy_max: 4,
        max_ppl_ratio: 1.5,
        ..dash(0.0)
    };
    let m = measure(&p, 0).unwrap();
    let o = m.oracle.as_ref().unwrap();
    assert!(m.trained.is_none());
    assert_eq!((o.single.len(), o.greedy.len()), (30, 4));
    let k = o.matched_k(1.5);
    assert!(
        (m.eval.skip_ratio - k as f64 / 30.0).abs() < 1e-12,
        "k = {k}"
    );
    // the set is chosen on the study's windows and scored on the evaluation windows
    assert!(
        m.eval
            .patterns
            .iter()
            .all(|pat| pat.iter().filter(|&&s| s).count() == k)
    );
    let mut bad = mobile_params();
    bad.dash = DashParams {
        oracle_tokens: 0,
        max_ppl_ratio: 0.9,
        ..p
    };
    let keys: Vec<String> = Checks::of(&bad).into_iter().map(|e| e.path).collect();
    for k in ["dash.oracle_tokens", "dash.max_ppl_ratio"] {
        assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
    }
}

#[test]
fn the_matched_policy_is_chosen_on_validation_and_is_unskipped_when_nothing_qualifies() {
    let p = DashParams {
        policy: super::params::PolicyKind::Matched,
        lambdas: vec![0.0, 1e6],
        validation_tokens: 40,
        learning_rate: 3.0,
        epochs: 4,
        ..dash(0.0)
    };
    // a bound no skipping policy can meet on the random decoder: λ = 1e6 skips nothing, so none
    // qualifies and the run is the unskipped model
    let strict = measure(&p, 0).unwrap();
    let mt = strict.matched.as_ref().unwrap();
    assert_eq!(mt.validation.len(), 2);
    assert_eq!(mt.validation[1].1, 0.0, "λ = 1e6 skips nothing");
    if mt.chosen.is_none() || !mt.matched {
        assert_eq!(strict.eval.skip_ratio, 0.0);
        assert!(strict.eval.patterns.iter().flatten().all(|s| !s));
    }
    // any bound: the λ that skips most on validation is chosen; its held-out run is the one
    // evaluated (the matched flag says whether it stayed within the bound there)
    let loose = measure(
        &DashParams {
            max_ppl_ratio: 1e12,
            ..p.clone()
        },
        0,
    )
    .unwrap();
    let mt = loose.matched.as_ref().unwrap();
    assert_eq!(mt.chosen, Some(0.0), "{:?}", mt.validation);
    assert!(mt.matched && loose.eval.skip_ratio > 0.0);
    assert_eq!(Some(&loose.eval), mt.chosen_eval.as_ref());
    // per-replication seeds train different policies; replication 0 is the plain seed
    let per = DashParams {
        seed_per_replication: true,
        max_ppl_ratio: 1e12,
        ..p
    };
    let (r0, r1) = (measure(&per, 0).unwrap(), measure(&per, 1).unwrap());
    assert_eq!(r0.eval, loose.eval);
    assert_ne!(
        r0.trained.as_ref().map(|t| t.scorer.clone()),
        r1.trained.as_ref().map(|t| t.scorer.clone())
    );
}

#[test]
fn training_learns_to_skip_a_redundant_layer_and_not_the_costly_ones() {
    // 8 random layers; layer 5's residual update is zeroed (attention output and FFN down
    // projections), so skipping it costs exactly nothing and saves 1/8 of the compute
    let (mut m, tok) = tiny_decoder("redundant", 8, 5, "redundant");
    m.map_weights(|l, site, w, _, _| {
        if l == 5 && matches!(site, LinearSite::Output | LinearSite::Down) {
            w.fill(0.0);
        }
    });
    let words = ["ab", "cd", "abcd", "cdab", "dcba", "a", "b", "c", "d", "ba"];
    let mut rng = sim::rng::stream(9, "redundant-text");
    let mut text = |n: usize| -> Vec<Vec<u32>> {
        (0..n)
            .map(|_| {
                let s: Vec<&str> = (0..8)
                    .map(|_| words[rng.random_range(0..words.len())])
                    .collect();
                tok.encode(&s.join(" "))
            })
            .collect()
    };
    let (train_w, held_out) = (text(24), text(8));
    let finals: Vec<f32> = unskipped(&m, &train_w, None).unwrap();
    let comp = Compensator::identity(8, 32).with_mode(Compensation::None);
    let p = DashParams {
        // skipping all 8 layers of this random decoder costs ≈ 0.18 nats: at λ = 10 a layer's
        // few hundredths of a nat outweigh its 1/8 of the compute (at λ = 1 every layer is skipped)
        lambda: 10.0,
        epochs: 8,
        learning_rate: 0.3,
        initial_skip: 0.05,
        batch_windows: 4,
        ..DashParams::default()
    };
    let t = train(
        &m,
        &train_w,
        &finals,
        comp,
        &p,
        &mut sim::rng::stream(1, "t"),
    )
    .unwrap();
    let base_fin = unskipped(&m, &held_out, None).unwrap();
    let h = m.config.hidden;
    let mut at = 0;
    let finals_per_window = held_out
        .iter()
        .map(|w| {
            at += w.len();
            base_fin[(at - w.len()) * h..at * h].to_vec()
        })
        .collect();
    let base = decoder::skip::Baseline {
        windows: held_out,
        finals: finals_per_window,
    };
    let e = evaluate(&m, &base, &t, &p).unwrap();
    assert!(
        e.layer_skip[5] > 0.9,
        "redundant layer 5: {:?}",
        e.layer_skip
    );
    assert!(
        e.layer_skip
            .iter()
            .enumerate()
            .all(|(l, &r)| l == 5 || r < 0.1),
        "the costly layers: {:?}",
        e.layer_skip
    );
    assert!(
        e.quality.mean_kl() < 1e-3,
        "skips {:?}, KL {}",
        e.layer_skip,
        e.quality.mean_kl()
    );
}
