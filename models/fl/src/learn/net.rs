//! What the three learning studies share to run their rounds through the FL network
//! ([`run_network`](crate::network::run_network)): random streams, the compute estimate of local
//! SGD, and the export of a run's rounds (curves over simulated time and over rounds, network
//! metrics, time to a target).

use sim::experiment::{RunContext, RunOutput};

use crate::learn::nn::Weights;
use crate::network::{NetworkRngs, NetworkRun};

/// The network streams of study `prefix`: selection/availability/check-in `"{prefix}/net"`, the
/// (unused by the studies, whose clients train on their own streams) shared training stream
/// `"{prefix}/train"`, and `agg` for the aggregator.
pub fn rngs(ctx: &RunContext, prefix: &str, agg: &str) -> NetworkRngs {
    NetworkRngs {
        net: ctx.rng(&format!("{prefix}/net")),
        train: ctx.rng(&format!("{prefix}/train")),
        agg: ctx.rng(agg),
    }
}

/// Multiply-accumulates of one forward pass of `w` per example (`Σ d_in·d_out`).
pub fn macs(w: &Weights) -> f64 {
    w.layers.iter().map(|l| (l.d_in * l.d_out) as f64).sum()
}

/// FLOPs of SGD over `examples` example-passes of the dense MLP `w`: 6 per multiply-accumulate
/// (2 forward, 4 backward), the usual dense-training estimate; biases and activations ignored.
pub fn sgd_flops(w: &Weights, examples: usize) -> f64 {
    6.0 * macs(w) * examples as f64
}

/// The accuracy of every round's evaluation, in round order.
pub fn accuracy_curve(run: &NetworkRun) -> Vec<f64> {
    run.rounds.iter().map(|r| r.eval.accuracy).collect()
}

/// Updates uploaded over the run (on time or late).
pub fn uploads(run: &NetworkRun) -> usize {
    run.rounds.iter().map(|r| r.on_time.len() + r.late).sum()
}

/// Simulated time (s) at which the round whose `curve` value first reaches `target` closed;
/// when none does (censored, like [`rounds_to`](super::common::rounds_to)) the end of the run
/// plus one mean round length.
pub fn time_to(run: &NetworkRun, curve: &[f64], target: f64) -> f64 {
    match curve.iter().position(|a| *a >= target) {
        Some(i) => run.rounds[i].close_s,
        None => run.end_s() + run.end_s() / run.rounds.len().max(1) as f64,
    }
}

/// Series of one curve: `metric` at each round's close time (simulated seconds) and
/// `{metric}_by_round` at the round number (1-based), both under `component`.
pub fn sample_curve(
    out: &mut RunOutput,
    run: &NetworkRun,
    component: &str,
    metric: &str,
    curve: &[f64],
) {
    let by_round = format!("{metric}_by_round");
    for (r, v) in run.rounds.iter().zip(curve) {
        out.sample(r.close_s, component, metric, *v);
        out.sample(f64::from(r.round + 1), component, &by_round, *v);
    }
}

/// Network metrics of `run`, names suffixed by `suffix` (empty for the method under study):
/// `wall_s` (simulated end), `round_s_mean`, `dropouts`, `offline`, `late_uploads`,
/// `aggregated_updates`.
pub fn network_metrics(out: &mut RunOutput, run: &NetworkRun, suffix: &str) {
    let rounds = run.rounds.len().max(1) as f64;
    let sum = |f: fn(&crate::network::RoundRecord) -> usize| {
        run.rounds.iter().map(f).sum::<usize>() as f64
    };
    out.metric(format!("wall_s{suffix}"), run.end_s())
        .metric(
            format!("round_s_mean{suffix}"),
            run.rounds.iter().map(|r| r.close_s - r.open_s).sum::<f64>() / rounds,
        )
        .metric(format!("dropouts{suffix}"), run.dropouts() as f64)
        .metric(format!("offline{suffix}"), sum(|r| r.offline))
        .metric(format!("late_uploads{suffix}"), run.late_uploads() as f64)
        .metric(
            format!("aggregated_updates{suffix}"),
            sum(|r| r.on_time.len()),
        );
}

/// A network for the studies' unit tests: `rounds` rounds, everyone selected, a one-hour deadline
/// (every upload on time) and a 100 Mbit/s ingress.
#[cfg(test)]
pub fn on_time_network(rounds: u32) -> crate::network::NetworkConfig {
    crate::network::NetworkConfig {
        rounds,
        participation: 1.0,
        deadline_s: 3600.0,
        server_ingress_mbps: 100.0,
        server_latency_ms: 0.0,
        aggregation_s: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::RoundRecord;
    use crate::traits::Eval;

    fn run(acc: &[f64]) -> NetworkRun {
        NetworkRun {
            rounds: acc
                .iter()
                .enumerate()
                .map(|(i, a)| RoundRecord {
                    round: i as u32,
                    open_s: 10.0 * i as f64,
                    close_s: 10.0 * i as f64 + 8.0,
                    eval: Eval {
                        loss: 0.0,
                        accuracy: *a,
                    },
                    ..RoundRecord::default()
                })
                .collect(),
            ..NetworkRun::default()
        }
    }

    #[test]
    fn time_to_target_is_the_close_time_or_censored() {
        let r = run(&[0.1, 0.6, 0.9]);
        let c = accuracy_curve(&r);
        assert_eq!(time_to(&r, &c, 0.5), 18.0);
        assert_eq!(time_to(&r, &c, 0.95), 28.0 + 28.0 / 3.0);
        let mut out = RunOutput::default();
        sample_curve(&mut out, &r, "m", "accuracy", &c);
        assert_eq!(out.series.len(), 6);
        assert_eq!(out.series[1].t_s, 1.0);
        assert_eq!(out.series[1].metric, "accuracy_by_round");
        assert_eq!(out.series[2].t_s, 18.0);
    }
}
