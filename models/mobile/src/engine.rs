//! The inference engine (llama.cpp with its OpenCL backend, GPU driven by a CPU host thread) as a
//! nexosim model: requests queue FIFO; prefill runs every decoder layer over the whole prompt, then
//! the LM head and sampling give the first token; decode runs every layer for one token at a time.
//! One engine event per step (layer or head). A step's duration comes from [`CostModel::timing`] at
//! the frequencies in force when it starts; during the step each domain is told its own busy
//! fraction (`cpu_util`, `gpu_util`, `mem_util`), which drives its power and its governor.

use std::collections::VecDeque;

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use nexosim::simulation::EventKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::components::dvfs::OppSwitch;
use sim::engine::{secs, t_s};

use super::cost::{CostModel, Phase, StepWork};
use super::dash::phone::{self as dash, DashEngine, DashStats, Extra};
use super::soc::Domain;

/// An inference request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Request {
    /// Sequence number.
    pub id: u64,
    /// Arrival time, seconds.
    pub arrival_s: f64,
    /// Prompt tokens (≥ 1).
    pub prompt: u64,
    /// Response tokens to generate (≥ 1; the first comes out of prefill).
    pub response: u64,
}

/// A phase change of the engine (`phase: None` = idle).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseEvent {
    /// Request concerned (the last one when idle).
    pub request: u64,
    /// New phase.
    pub phase: Option<Phase>,
    /// Prompt length of the request, tokens.
    pub prompt: u64,
}

/// A finished request and its timestamps (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestDone {
    /// The request.
    pub request: Request,
    /// Prefill start.
    pub start_s: f64,
    /// First token out.
    pub first_token_s: f64,
    /// Last token out.
    pub end_s: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Active {
    req: Request,
    start_s: f64,
    first_token_s: f64,
    phase: Phase,
    /// Step index within the current prefill or token (0..=layers; `layers` = head).
    step: u32,
    /// Tokens emitted so far.
    emitted: u64,
}

/// The engine model.
#[derive(Serialize, Deserialize)]
pub struct Engine {
    /// CPU activity of the current step (drives the CPU's dynamic power).
    pub cpu_util: Output<f64>,
    /// Fraction of the step the host thread is runnable (computing or spin-waiting on the GPU):
    /// the utilisation the scheduler, hence schedutil, sees.
    pub cpu_busy: Output<f64>,
    /// Fraction of the step the host thread computes (not spin-waiting): what the host core's
    /// cache-miss counters see (memlat).
    pub cpu_compute: Output<f64>,
    /// GPU busy fraction of the current step.
    pub gpu_util: Output<f64>,
    /// Memory-bandwidth utilisation of the current step.
    pub mem_util: Output<f64>,
    /// Phase changes.
    pub phase: Output<PhaseEvent>,
    /// Finished requests.
    pub done: Output<RequestDone>,
    cost: CostModel,
    /// Effective OPP index of each domain.
    opp: [usize; 3],
    queue: VecDeque<Request>,
    active: Option<Active>,
    /// Steps executed.
    steps: u64,
    /// The running step: its remaining work at `since_s`, its end event.
    running: Option<Running>,
    /// DASH layer skipping (`None`: every layer runs).
    dash: Option<DashEngine>,
    /// The host's speed in cycles of the CPU domain per second when a scheduler places it
    /// (`None`: it runs on the CPU domain at the domain's frequency).
    host_hz: Option<f64>,
    /// The timeline of executed steps and OPP switches, kept only when tracing.
    log: Option<EngineLog>,
}

/// One executed (part of a) step: a layer or the head of one request in one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepSpan {
    /// Request id.
    pub request: u64,
    /// Prefill or decode.
    pub phase: Phase,
    /// Layer index (`layers` is the output head).
    pub step: u32,
    /// Start, seconds.
    pub start_s: f64,
    /// Duration, seconds (cut short when an OPP switch re-times the rest of the step).
    pub dur_s: f64,
    /// Busy fraction of the CPU, GPU and memory interface during it.
    pub util: [f64; 3],
}

/// What the engine saw, for the run's timeline: its steps and every OPP switch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineLog {
    /// Executed steps in order.
    pub steps: Vec<StepSpan>,
    /// OPP switches in order.
    pub switches: Vec<OppSwitch>,
}

/// The step in progress.
#[derive(Serialize, Deserialize)]
struct Running {
    /// Work left at `since_s`.
    work: StepWork,
    /// DASH policy work left at `since_s`.
    extra: Extra,
    /// Time the current timing started, seconds.
    since_s: f64,
    /// Duration of `work` at the OPPs in force since `since_s`, seconds.
    duration_s: f64,
    /// Busy fraction of the CPU, GPU and memory interface at those OPPs.
    util: [f64; 3],
    /// The scheduled end of the step.
    key: EventKey,
}

#[Model]
impl Engine {
    /// An idle engine with cost model `cost`, the domains starting at OPPs `opp`.
    pub fn new(cost: CostModel, opp: [usize; 3]) -> Self {
        Self {
            cpu_util: Output::default(),
            cpu_busy: Output::default(),
            cpu_compute: Output::default(),
            gpu_util: Output::default(),
            mem_util: Output::default(),
            phase: Output::default(),
            done: Output::default(),
            cost,
            opp,
            queue: VecDeque::new(),
            active: None,
            steps: 0,
            running: None,
            dash: None,
            host_hz: None,
            log: None,
        }
    }

    /// The same engine keeping an [`EngineLog`] for the run's timeline.
    pub fn with_log(mut self) -> Self {
        self.log = Some(EngineLog::default());
        self
    }

    /// The timeline kept so far (empty unless built [`Engine::with_log`]).
    pub async fn take_log(&mut self, _: ()) -> EngineLog {
        self.log.take().unwrap_or_default()
    }

    /// Logs the (part of the) running step `r` that ended at `now`.
    fn log_step(&mut self, r: &Running, now: f64) {
        let (Some(log), Some(a)) = (self.log.as_mut(), self.active.as_ref()) else {
            return;
        };
        log.steps.push(StepSpan {
            request: a.req.id,
            phase: a.phase,
            step: a.step,
            start_s: r.since_s,
            dur_s: now - r.since_s,
            util: r.util,
        });
    }

    /// The same engine skipping layers as DASH's plan `d` says.
    pub fn with_dash(mut self, d: DashEngine) -> Self {
        self.dash = Some(d);
        self
    }

    /// A request arrives (input port).
    pub async fn submit(&mut self, req: Request, cx: &Context<Self>) {
        self.queue.push_back(req);
        if self.active.is_none() {
            self.start_next(None, cx).await;
        }
    }

    /// A domain changed OPP (input port, from each domain's `switched`): the rest of the running
    /// step is re-timed at the new frequencies.
    pub async fn on_switch(&mut self, s: OppSwitch, cx: &Context<Self>) {
        let Some(slot) = self.opp.get_mut(s.domain as usize) else {
            return;
        };
        *slot = s.opp;
        if let Some(log) = self.log.as_mut() {
            log.switches.push(s);
        }
        self.retime(cx).await;
    }

    /// The scheduler moved the host or changed its cluster's frequency (input port): the host now
    /// runs `hz` cycles of the CPU domain per second; the rest of the running step is re-timed.
    pub async fn host_speed(&mut self, hz: f64, cx: &Context<Self>) {
        self.host_hz = Some(hz.max(1.0));
        self.retime(cx).await;
    }

    /// Re-times the rest of the running step at the speeds now in force.
    async fn retime(&mut self, cx: &Context<Self>) {
        let Some(r) = self.running.take() else { return };
        let now = t_s(cx.time());
        self.log_step(&r, now);
        let left = if r.duration_s > 0.0 {
            (1.0 - (now - r.since_s) / r.duration_s).clamp(0.0, 1.0)
        } else {
            0.0
        };
        r.key.cancel();
        let w = StepWork {
            cpu_cycles: r.work.cpu_cycles * left,
            gpu_cycles: r.work.gpu_cycles * left,
            mem_bytes: r.work.mem_bytes * left,
        };
        self.time_step(w, r.extra.scaled(left), cx).await;
    }

    /// Engine steps executed so far (replier port).
    pub async fn steps(&mut self, _: ()) -> u64 {
        self.steps
    }

    /// What DASH did so far (replier port; `None` without DASH).
    pub async fn dash_stats(&mut self, _: ()) -> Option<DashStats> {
        self.dash.as_ref().map(DashEngine::stats)
    }

    /// The current step has finished (self-scheduled).
    #[nexosim(schedulable)]
    async fn step_done(&mut self, _: (), cx: &Context<Self>) {
        let now = t_s(cx.time());
        if let Some(r) = self.running.take() {
            self.log_step(&r, now);
        }
        let Some(mut a) = self.active else { return };
        let layers = self.cost.llm.layers;
        if a.step < layers {
            a.step += 1;
        } else {
            // head done: a token is out
            a.emitted += 1;
            a.step = 0;
            if a.phase == Phase::Prefill {
                a.first_token_s = now;
            }
            if a.emitted >= a.req.response {
                self.active = None;
                self.done
                    .send(RequestDone {
                        request: a.req,
                        start_s: a.start_s,
                        first_token_s: a.first_token_s,
                        end_s: now,
                    })
                    .await;
                self.start_next(Some(a.req), cx).await;
                return;
            }
            if a.phase == Phase::Prefill {
                a.phase = Phase::Decode;
                self.phase
                    .send(PhaseEvent {
                        request: a.req.id,
                        phase: Some(Phase::Decode),
                        prompt: a.req.prompt,
                    })
                    .await;
            }
        }
        self.active = Some(a);
        self.run_step(cx).await;
    }

    /// Starts the next queued request, or goes idle (`prev`: the request that just finished).
    async fn start_next(&mut self, prev: Option<Request>, cx: &Context<Self>) {
        let Some(req) = self.queue.pop_front() else {
            for d in Domain::ALL {
                self.send_util(d, 0.0).await;
            }
            self.cpu_busy.send(0.0).await;
            self.cpu_compute.send(0.0).await;
            let (request, prompt) = prev.map_or((0, 0), |r| (r.id, r.prompt));
            self.phase
                .send(PhaseEvent {
                    request,
                    phase: None,
                    prompt,
                })
                .await;
            return;
        };
        let now = t_s(cx.time());
        self.active = Some(Active {
            req,
            start_s: now,
            first_token_s: now,
            phase: Phase::Prefill,
            step: 0,
            emitted: 0,
        });
        self.phase
            .send(PhaseEvent {
                request: req.id,
                phase: Some(Phase::Prefill),
                prompt: req.prompt,
            })
            .await;
        self.run_step(cx).await;
    }

    /// Work of the active request's current step.
    fn work(&self, a: &Active) -> StepWork {
        let layers = self.cost.llm.layers;
        if a.step == layers {
            return self.cost.head_work();
        }
        match a.phase {
            Phase::Prefill => {
                self.cost
                    .layer_work(Phase::Prefill, a.step, a.req.prompt, a.req.prompt)
            }
            Phase::Decode => {
                self.cost
                    .layer_work(Phase::Decode, a.step, 1, a.req.prompt + a.emitted)
            }
        }
    }

    /// Times the current step at the OPPs in force and schedules its end.
    async fn run_step(&mut self, cx: &Context<Self>) {
        let Some(a) = self.active else { return };
        let (w, extra) = match self.dash.as_mut() {
            None => (self.work(&a), Extra::default()),
            Some(d) => {
                let (tokens, context) = match a.phase {
                    Phase::Prefill => (a.req.prompt, a.req.prompt),
                    Phase::Decode => (1, a.req.prompt + a.emitted),
                };
                if a.step == 0 {
                    d.begin(tokens, self.cost.llm.layers);
                }
                d.step(&self.cost, a.phase, a.step, context)
            }
        };
        self.steps += 1;
        self.time_step(w, extra, cx).await;
    }

    /// Times work `w` (plus DASH's `extra`) at the OPPs in force, announces the utilisations and
    /// schedules the step end.
    async fn time_step(&mut self, w: StepWork, extra: Extra, cx: &Context<Self>) {
        let f = self.cost.soc.cpu.dvfs.freq_hz(self.opp[0]);
        // off the CPU domain the host's cycles take as long as `k` times as many domain cycles
        let k = self.host_hz.map_or(1.0, |hz| f / hz);
        let at_domain = StepWork {
            cpu_cycles: w.cpu_cycles * k,
            ..w
        };
        let t = dash::timing(&self.cost, &at_domain, extra.scaled(k), self.opp);
        for d in Domain::ALL {
            self.send_util(d, t.util[d as usize]).await;
        }
        self.cpu_busy.send(self.cost.host_busy(&t)).await;
        let host_s = (w.cpu_cycles + extra.serial_cycles + extra.overlapped_cycles) * k / f;
        self.cpu_compute
            .send((host_s / t.time_s.max(1e-12)).min(1.0))
            .await;
        let delay = secs(t.time_s).max(std::time::Duration::from_nanos(1));
        // a positive delay is always schedulable
        if let Ok(key) = cx.schedule_keyed_event(delay, schedulable!(Self::step_done), ()) {
            self.running = Some(Running {
                work: w,
                extra,
                since_s: t_s(cx.time()),
                duration_s: t.time_s,
                util: t.util,
                key,
            });
        }
    }

    async fn send_util(&mut self, d: Domain, u: f64) {
        match d {
            Domain::Cpu => self.cpu_util.send(u).await,
            Domain::Gpu => self.gpu_util.send(u).await,
            Domain::Mem => self.mem_util.send(u).await,
        }
    }
}
