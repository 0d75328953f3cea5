//! DASH's engine plan for one mobile run: the decisions measured on the real decoder
//! ([`super::measure`]) become the phone's per-token layer plan, and the measurement's metrics and
//! series go into the run's output.

use sim::experiment::{RunError, RunOutput};

use super::features;
use super::measure::{self, Matched, Measured};
use super::oracle::Oracle;
use super::phone::DashEngine;
use crate::params::MobileParams;

/// DASH's engine plan: the policy trained (or the oracle's static set) and evaluated on the real
/// decoder (metrics of that measurement written into `out`; the fraction of tokens skipping each
/// layer as the series `dash/layer_skip_ratio` with the layer index as `t_s`). The phone LLM must
/// have the decoder's depth: its layers follow the decoder's decisions one for one.
/// `replication` is the run's replication index (the training seed's offset under
/// `dash.seed_per_replication`).
pub fn plan(
    p: &MobileParams,
    replication: u32,
    out: &mut RunOutput,
) -> Result<DashEngine, RunError> {
    let m = measure::measure(&p.dash, replication)?;
    let layers = m.eval.layer_skip.len();
    if p.llm.layers as usize != layers {
        return Err(RunError::Model(format!(
            "dash: the phone LLM `{}` has {} layers but the decoder DASH runs on has {layers}; use llm: smollm2-135m-q4_1",
            p.llm.name, p.llm.layers
        )));
    }
    emit(&m, out);
    if let Some(o) = &m.oracle {
        emit_oracle(o, p.dash.max_ppl_ratio, out);
    }
    if let Some(mt) = &m.matched {
        emit_matched(mt, &m.baseline, out);
    }
    // a static set needs no policy evaluation on the phone
    let (fixed_cycles, eval_flops) = match &m.trained {
        Some(t) => (
            p.dash.policy_fixed_cycles,
            features::flops(p.llm.hidden) + t.scorer.flops(),
        ),
        None => (0.0, 0.0),
    };
    Ok(DashEngine::new(
        m.eval.patterns.clone(),
        p.dash.asynchronous,
        p.dash.compensation,
        fixed_cycles,
        eval_flops,
    ))
}

/// The measurement's quality metrics and the per-layer skip ratio series.
fn emit(m: &Measured, out: &mut RunOutput) {
    let (q, b) = (&m.eval.quality, &m.baseline);
    out.metric("dash_skip_ratio", m.eval.skip_ratio)
        .metric("dash_perplexity", q.perplexity())
        .metric("dash_base_perplexity", b.perplexity())
        .metric(
            "dash_perplexity_ratio",
            q.perplexity() / b.perplexity().max(f64::MIN_POSITIVE),
        )
        .metric("dash_kl", q.mean_kl())
        .metric("dash_top1", q.top1())
        .metric("dash_eval_tokens", q.tokens as f64)
        .metric("dash_real_weights", if m.real_weights { 1.0 } else { 0.0 })
        .metric(
            "dash_train_return_last",
            m.trained
                .as_ref()
                .and_then(|t| t.mean_return.last().copied())
                .unwrap_or(0.0),
        );
    for (l, r) in m.eval.layer_skip.iter().enumerate() {
        out.sample(l as f64, "dash", "layer_skip_ratio", *r);
    }
}

/// The oracle study: per-layer series (`t_s` = layer), the greedy sets (`t_s` = k), the spans
/// (`t_s` = first layer) and summary metrics.
fn emit_oracle(o: &Oracle, max_ratio: f64, out: &mut RunOutput) {
    for (l, s) in o.single.iter().enumerate() {
        let t = l as f64;
        out.sample(t, "dash", "oracle_kl_identity", s.identity.mean_kl());
        out.sample(t, "dash", "oracle_kl_compensated", s.compensated.mean_kl());
        out.sample(t, "dash", "oracle_ppl_ratio_identity", o.ratio(&s.identity));
        out.sample(
            t,
            "dash",
            "oracle_ppl_ratio_compensated",
            o.ratio(&s.compensated),
        );
        out.sample(t, "dash", "oracle_top1_compensated", s.compensated.top1());
    }
    for (k, q) in o.greedy.iter().enumerate() {
        let t = (k + 1) as f64;
        out.sample(t, "dash", "oracle_greedy_ppl_ratio", o.ratio(q));
        out.sample(t, "dash", "oracle_greedy_kl", q.mean_kl());
        out.sample(t, "dash", "oracle_greedy_top1", q.top1());
    }
    for (start, len, q) in &o.spans {
        let t = *start as f64;
        out.sample(
            t,
            "dash",
            &format!("oracle_span{len}_ppl_ratio"),
            o.ratio(q),
        );
        out.sample(t, "dash", &format!("oracle_span{len}_kl"), q.mean_kl());
    }
    let best = o.ranking.first().copied().unwrap_or(0);
    let k = o.matched_k(max_ratio);
    out.metric("dash_oracle_tokens", o.base.tokens as f64)
        .metric("dash_oracle_best_layer", best as f64)
        .metric(
            "dash_oracle_best_layer_kl",
            o.single[best].compensated.mean_kl(),
        )
        .metric(
            "dash_oracle_best_layer_ppl_ratio",
            o.ratio(&o.single[best].compensated),
        )
        .metric("dash_oracle_matched_k", k as f64)
        .metric("dash_oracle_token_skippable", o.token_skippable)
        .metric("dash_oracle_token_cheap_layers", o.token_cheap_layers)
        .metric(
            "dash_oracle_matched_ppl_ratio",
            k.checked_sub(1).map_or(1.0, |i| o.ratio(&o.greedy[i])),
        );
}

/// The λ selection of `policy: matched`: per λ of the grid its validation skip ratio and
/// perplexity ratio (series, `t_s` = λ), the chosen λ (−1: none), whether the run skips, and the
/// chosen policy's held-out figures even when it failed the bound.
fn emit_matched(mt: &Matched, base: &decoder::eval::Quality, out: &mut RunOutput) {
    for &(lambda, skip, ratio) in &mt.validation {
        out.sample(lambda, "dash", "validation_skip_ratio", skip);
        out.sample(lambda, "dash", "validation_ppl_ratio", ratio);
    }
    out.metric("dash_matched", if mt.matched { 1.0 } else { 0.0 })
        .metric("dash_lambda_chosen", mt.chosen.unwrap_or(-1.0));
    if let Some(e) = &mt.chosen_eval {
        out.metric("dash_chosen_skip_ratio", e.skip_ratio)
            .metric("dash_chosen_ppl_ratio", e.ratio(base));
    }
}
