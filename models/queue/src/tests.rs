//! The engine against queueing theory: simulated M/M/1 and M/M/c means must fall inside a 95%
//! confidence interval (over replications) around the Erlang C values.

use sim::experiment::{Experiment, RunContext};
use sim::rng::run_seed;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::theory::mmc_mean_wait_s;
use super::{QueueExperiment, QueueParams};

/// Mean and 95% CI half-width of `metric` over `reps` replications.
fn replicate(p: &QueueParams, reps: u32, metric: &str) -> (f64, f64) {
    let values: Vec<f64> = (0..reps)
        .map(|r| {
            let ctx = RunContext {
                run: u64::from(r),
                point: 0,
                replication: r,
                seed: run_seed(2024, r, 0),
                trace_events: 0,
            };
            let out = QueueExperiment.run(p, &ctx).expect("run succeeds");
            out.get(metric).expect("metric exists")
        })
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let t = StudentsT::new(0.0, 1.0, n - 1.0)
        .unwrap()
        .inverse_cdf(0.975);
    (mean, t * (var / n).sqrt())
}

fn params(lambda: f64, mu: f64, c: u32) -> QueueParams {
    QueueParams {
        arrival_rate: lambda,
        service_rate: mu,
        servers: c,
        customers: 40_000,
        warmup_customers: 4_000,
        series_interval_s: 0.0,
    }
}

#[test]
fn mm1_mean_wait_and_sojourn_match_theory() {
    let (lambda, mu) = (0.6, 1.0);
    let wq = mmc_mean_wait_s(lambda, mu, 1);
    let (mean, half) = replicate(&params(lambda, mu, 1), 12, "mean_wait_s");
    assert!(
        (mean - wq).abs() <= half,
        "M/M/1 W_q: sim {mean:.4} ± {half:.4}, theory {wq:.4}"
    );
    let (mean, half) = replicate(&params(lambda, mu, 1), 12, "mean_sojourn_s");
    let w = wq + 1.0 / mu;
    assert!(
        (mean - w).abs() <= half,
        "M/M/1 W: sim {mean:.4} ± {half:.4}, theory {w:.4}"
    );
}

#[test]
fn mmc_mean_wait_matches_erlang_c() {
    for (c, lambda) in [(2, 1.5), (4, 3.2)] {
        let wq = mmc_mean_wait_s(lambda, 1.0, c);
        let (mean, half) = replicate(&params(lambda, 1.0, c), 12, "mean_wait_s");
        assert!(
            (mean - wq).abs() <= half,
            "M/M/{c} W_q: sim {mean:.4} ± {half:.4}, Erlang C {wq:.4}"
        );
    }
}

#[test]
fn utilization_is_offered_load_per_server() {
    let (mean, half) = replicate(&params(1.5, 1.0, 2), 8, "utilization");
    assert!(
        (mean - 0.75).abs() <= half.max(0.01),
        "utilization {mean} ± {half}"
    );
}

#[test]
fn checkpointing_does_not_change_a_run() {
    let tmp = std::env::temp_dir().join(format!("sysim-queue-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let p = params(0.7, 1.0, 2);
    let ctx = RunContext {
        run: 0,
        point: 0,
        replication: 0,
        seed: run_seed(9, 0, 0),
        trace_events: 0,
    };
    let plain = QueueExperiment.run(&p, &ctx).unwrap();
    let ckpt = sim::checkpoint::Checkpointer::new(
        tmp.join("run-0.ckpt"),
        std::time::Duration::from_secs(200),
        "test build",
    );
    let stepped = QueueExperiment.run_checkpointed(&p, &ctx, &ckpt).unwrap();
    assert_eq!(plain.metrics, stepped.metrics);
    assert!(!ckpt.exists(), "a finished run leaves no checkpoint");
    std::fs::remove_dir_all(&tmp).unwrap();
}
