//! The phone's timeline (`sysim run --trace DIR`): each request's prefill and decode, each engine
//! step (a decoder layer or the output head) as busy time on the CPU, GPU and memory interface, and
//! counter tracks of every domain's frequency and power.
//!
//! Tracks: `requests/engine` (one slice per request phase); `cpu/layers`, `gpu/layers`,
//! `mem/layers` (one slice per step, as long as the processor was busy in it: the step's duration ×
//! its utilisation, starting with the step; named `prefill L3`, `decode L3`, `head`); counters
//! `<domain>/freq_mhz` at every OPP switch and `<domain>/power_w` whenever a domain's power moves by
//! more than 0.5 % (power = the DVFS model's `C·V²·f·util + static` at the OPP and utilisation in
//! force).

use sim::experiment::RunContext;
use sim::trace::Trace;

use super::cost::{CostModel, Phase};
use super::experiment::{INITIAL_OPP, SimResult};
use super::soc::Domain;

/// Relative change of a domain's power below which no new power sample is written.
const POWER_STEP: f64 = 0.005;

/// The timeline of simulation `r` on `cost` (off unless `ctx` asks for one).
pub fn record(r: &SimResult, cost: &CostModel, ctx: &RunContext) -> Trace {
    let mut trace = ctx.tracer();
    if !trace.is_on() {
        return trace;
    }
    for d in &r.done {
        let id = d.request.id as f64;
        let args = [
            ("request", id),
            ("prompt_tokens", d.request.prompt as f64),
            ("output_tokens", d.request.response as f64),
        ];
        trace.slice_with(
            "requests/engine",
            "prefill",
            d.start_s,
            d.first_token_s - d.start_s,
            &args,
        );
        trace.slice_with(
            "requests/engine",
            "decode",
            d.first_token_s,
            d.end_s - d.first_token_s,
            &args,
        );
    }
    let specs = Domain::ALL.map(|d| cost.dvfs(d, 0));
    let mut opp = INITIAL_OPP;
    let mut util = [0.0; 3];
    let mut shown_w = [f64::NAN; 3];
    let mut power = |trace: &mut Trace, t_s: f64, opp: &[usize; 3], util: &[f64; 3]| {
        for d in Domain::ALL {
            let i = d as usize;
            let w = specs[i].power_w(opp[i], util[i]);
            if shown_w[i].is_nan() || (w - shown_w[i]).abs() > POWER_STEP * shown_w[i].abs() {
                trace.counter(&format!("{}/power_w", d.name()), t_s, w);
                shown_w[i] = w;
            }
        }
    };
    for d in Domain::ALL {
        let i = d as usize;
        trace.counter(
            &format!("{}/freq_mhz", d.name()),
            0.0,
            cost.soc.domain(d).opps_mhz[opp[i]],
        );
    }
    power(&mut trace, 0.0, &opp, &util);
    let layers = cost.llm.layers;
    let (mut switches, mut end_s) = (r.log.switches.iter().peekable(), 0.0f64);
    for s in &r.log.steps {
        while let Some(sw) = switches.next_if(|sw| sw.t_s <= s.start_s) {
            switch(&mut trace, cost, sw.domain, sw.opp, sw.t_s, &mut opp);
            if end_s < sw.t_s {
                util = [0.0; 3];
            }
            power(&mut trace, sw.t_s, &opp, &util);
        }
        if end_s < s.start_s {
            // the engine idled since the last step ended
            power(&mut trace, end_s, &opp, &[0.0; 3]);
        }
        util = s.util;
        power(&mut trace, s.start_s, &opp, &util);
        let name = match (s.step == layers, s.phase) {
            (true, _) => "head".to_owned(),
            (false, Phase::Prefill) => format!("prefill L{}", s.step),
            (false, Phase::Decode) => format!("decode L{}", s.step),
        };
        for d in Domain::ALL {
            let busy_s = s.dur_s * s.util[d as usize];
            if busy_s > 0.0 {
                trace.slice_with(
                    &format!("{}/layers", d.name()),
                    &name,
                    s.start_s,
                    busy_s,
                    &[("request", s.request as f64), ("util", s.util[d as usize])],
                );
            }
        }
        end_s = s.start_s + s.dur_s;
    }
    for sw in switches {
        switch(&mut trace, cost, sw.domain, sw.opp, sw.t_s, &mut opp);
    }
    power(&mut trace, end_s, &opp, &[0.0; 3]);
    trace
}

/// Records domain `domain`'s switch to OPP `to` at `t_s`.
fn switch(
    trace: &mut Trace,
    cost: &CostModel,
    domain: u32,
    to: usize,
    t_s: f64,
    opp: &mut [usize; 3],
) {
    let Some(&d) = Domain::ALL.get(domain as usize) else {
        return;
    };
    opp[d as usize] = to;
    trace.counter(
        &format!("{}/freq_mhz", d.name()),
        t_s,
        cost.soc.domain(d).opps_mhz[to],
    );
}
