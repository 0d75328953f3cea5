//! Parameters of `fl-backdoor` (the POLAR study).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::experiment::{ParamError, Validate};

use super::attack::{Attack, PolarConfig};
use super::defense::{Defense, DefenseConfig};
use crate::fl::devices::DeviceMix;
use crate::fl::learn::common::{Sgd, at_least, positive, within};
use crate::fl::learn::task::TaskShape;
use crate::fl::network::NetworkConfig;

/// The backdoor trigger stamped on inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerParams {
    /// Number of input coordinates overwritten (the last ones, like a corner patch).
    pub size: usize,
    /// Value written.
    pub value: f64,
    /// Label the backdoor maps triggered inputs to.
    pub target_label: u32,
}

/// Attackers among the clients of an FL network, one attack against one defense.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackdoorParams {
    /// Attack under study.
    pub attack: Attack,
    /// Attacks also run on identical data and seeds for the comparison metrics (may be empty).
    #[serde(default)]
    pub baselines: Vec<Attack>,
    /// Server aggregation rule.
    pub defense: Defense,
    /// Defense tuning.
    pub defense_config: DefenseConfig,
    /// Number of clients (the network's participants).
    pub clients: usize,
    /// How many of them are attackers (colluding, same trigger; they act whenever on time).
    pub attackers: usize,
    /// Rounds, participation, deadline and coordinator ingress of the FL network.
    pub network: NetworkConfig,
    /// The clients' devices (default: [`DeviceMix::reliable`], everyone online, no dropouts).
    #[serde(default = "DeviceMix::reliable")]
    pub devices: DeviceMix,
    /// Task shape.
    pub task: TaskShape,
    /// Hidden layer widths of the MLP.
    pub hidden: Vec<usize>,
    /// Dirichlet α of the clients' label skew.
    pub dirichlet_alpha: f64,
    /// Training examples per client.
    pub samples_per_client: usize,
    /// Clean test examples (main task and, triggered, backdoor success).
    pub test_samples: usize,
    /// Server's clean root examples (FLTrust).
    pub root_samples: usize,
    /// Examples for pretraining the initial global model.
    pub pretrain_samples: usize,
    /// Pretraining SGD.
    pub pretrain: Sgd,
    /// Local SGD per round.
    pub local: Sgd,
    /// Trigger.
    pub trigger: TriggerParams,
    /// Share of an attacker's examples that are triggered copies.
    pub poison_fraction: f64,
    /// Scale of the poisoned layers' update (1 = none; > 1 = model replacement boost).
    pub boost: f64,
    /// Norm-bounded attack: the submitted change is scaled down to at most this multiple of the
    /// attacker's own benign change (L2); absent = unbounded.
    #[serde(default)]
    pub norm_bound: Option<f64>,
    /// LP attack: share of the full-model BSR the selected layers must reach.
    pub lp_threshold: f64,
    /// POLAR agent.
    pub polar: PolarConfig,
}

impl Validate for BackdoorParams {
    fn validate(&self) -> Vec<ParamError> {
        let mut e = Vec::new();
        at_least("clients", self.clients, 2, &mut e);
        if self.attackers >= self.clients {
            e.push(ParamError::new(
                "attackers",
                format!(
                    "must be < clients ({}), got {}",
                    self.clients, self.attackers
                ),
            ));
        }
        self.network.validate("network", &mut e);
        self.devices.validate("devices", &mut e);
        self.task.validate("task", &mut e);
        for (i, h) in self.hidden.iter().enumerate() {
            at_least(&format!("hidden.{i}"), *h, 1, &mut e);
        }
        positive("dirichlet_alpha", self.dirichlet_alpha, &mut e);
        at_least("samples_per_client", self.samples_per_client, 1, &mut e);
        at_least("test_samples", self.test_samples, 1, &mut e);
        at_least("root_samples", self.root_samples, 1, &mut e);
        at_least("pretrain_samples", self.pretrain_samples, 1, &mut e);
        self.pretrain.validate("pretrain", &mut e);
        self.local.validate("local", &mut e);
        at_least("trigger.size", self.trigger.size, 1, &mut e);
        if self.trigger.size > self.task.dim {
            e.push(ParamError::new(
                "trigger.size",
                format!(
                    "must be ≤ task.dim ({}), got {}",
                    self.task.dim, self.trigger.size
                ),
            ));
        }
        if !self.trigger.value.is_finite() {
            e.push(ParamError::new("trigger.value", "must be finite"));
        }
        if self.trigger.target_label as usize >= self.task.classes {
            e.push(ParamError::new(
                "trigger.target_label",
                format!(
                    "must be < task.classes ({}), got {}",
                    self.task.classes, self.trigger.target_label
                ),
            ));
        }
        within("poison_fraction", self.poison_fraction, 0.0, 1.0, &mut e);
        positive("boost", self.boost, &mut e);
        if let Some(b) = self.norm_bound {
            positive("norm_bound", b, &mut e);
        }
        within("lp_threshold", self.lp_threshold, 0.0, 1.0, &mut e);
        at_least("polar.samples", self.polar.samples, 1, &mut e);
        at_least("polar.steps", self.polar.steps, 1, &mut e);
        positive("polar.lr", self.polar.lr, &mut e);
        if !(self.polar.penalty.is_finite() && self.polar.penalty >= 0.0) {
            e.push(ParamError::new(
                "polar.penalty",
                format!("must be a finite number ≥ 0, got {}", self.polar.penalty),
            ));
        }
        if !(self.polar.p0 > 0.0 && self.polar.p0 < 1.0) {
            e.push(ParamError::new(
                "polar.p0",
                format!("must be within (0, 1), got {}", self.polar.p0),
            ));
        }
        let c = &self.defense_config;
        if c.assumed_attackers * 2 >= self.clients {
            e.push(ParamError::new(
                "defense_config.assumed_attackers",
                format!(
                    "must be < clients / 2 ({}), got {}",
                    self.clients.div_ceil(2),
                    c.assumed_attackers
                ),
            ));
        }
        at_least("defense_config.rlr_threshold", c.rlr_threshold, 1, &mut e);
        positive("defense_config.clip_factor", c.clip_factor, &mut e);
        if !(c.flame_noise.is_finite() && c.flame_noise >= 0.0) {
            e.push(ParamError::new(
                "defense_config.flame_noise",
                format!("must be a finite number ≥ 0, got {}", c.flame_noise),
            ));
        }
        e
    }
}
