//! Parameters of `fl-backdoor` (the POLAR study).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::validate::{Checks, Validate};

use super::attack::{Attack, PolarConfig};
use super::defense::{Defense, DefenseConfig};
use crate::devices::DeviceMix;
use crate::learn::cnn::CnnShape;
use crate::learn::common::Sgd;
use crate::learn::digits;
use crate::learn::task::TaskShape;
use crate::network::NetworkConfig;

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

/// The network every client trains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    /// A dense MLP (ReLU) with these hidden widths.
    Mlp {
        /// Hidden layer widths.
        hidden: Vec<usize>,
    },
    /// The residual CNN of [`crate::learn::cnn`]; inputs are square one-channel images
    /// (`task.dim` = side², side even).
    Cnn(CnnShape),
}

/// Where the examples come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// Synthetic Gaussian-prototype examples of shape `task`.
    #[default]
    Prototypes,
    /// The real UCI 8×8 digits ([`crate::learn::digits`], fetched by `scripts/fetch-data.sh`),
    /// split without replacement into test, root, pretraining and client sets; when the file is
    /// absent the run says so (`real_data` = 0) and uses prototypes of shape `task` (which must
    /// then be 64 × 10) as a stand-in.
    Digits,
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
    /// The clients' network.
    pub model: ModelSpec,
    /// Where the examples come from (default: synthetic prototypes).
    #[serde(default)]
    pub data: DataSource,
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
    /// The attackers' SGD of their malicious models (absent: `local`). Attackers that train their
    /// poisoned model longer than benign clients train theirs are the usual threat model of FL
    /// backdoor studies (Bagdasaryan et al., AISTATS 2020, §4; Xie et al., DBA, ICLR 2020); the same
    /// for every attack.
    #[serde(default)]
    pub malicious_local: Option<Sgd>,
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
    /// LP attack's adaptive layer control (its released code's `lp_attack` mode, `BLS_adaptive`):
    /// the least critical of the selected layers are dropped while the attackers' copy of the
    /// server's rule would flag all their updates (default: off, the plain rule).
    #[serde(default)]
    pub lp_adaptive: bool,
    /// The colluders all submit one crafted update, the round's first attacker's (LP's released
    /// code, `attacker()`; Bagdasaryan et al. 2020's colluders likewise share one backdoored
    /// model); the same for every attack (default: off, each crafts its own).
    #[serde(default)]
    pub shared_update: bool,
    /// POLAR agent.
    pub polar: PolarConfig,
}

impl Validate for BackdoorParams {
    fn validate(&self, c: &mut Checks) {
        c.at_least("clients", self.clients, 2);
        if self.attackers >= self.clients {
            c.fail(
                "attackers",
                format!(
                    "must be < clients ({}), got {}",
                    self.clients, self.attackers
                ),
            );
        }
        c.part("network", &self.network);
        c.part("devices", &self.devices);
        c.part("task", &self.task);
        match &self.model {
            ModelSpec::Mlp { hidden } => {
                for (i, h) in hidden.iter().enumerate() {
                    c.at_least(&format!("model.mlp.hidden.{i}"), *h, 1);
                }
            }
            ModelSpec::Cnn(shape) => {
                c.part("model.cnn", shape);
                if self.image_side().is_none() {
                    c.fail(
                        "task.dim",
                        format!(
                            "the CNN needs square images with an even side (dim = side², e.g. 64), got {}",
                            self.task.dim
                        ),
                    );
                }
            }
        }
        if self.data == DataSource::Digits {
            self.check_digits(c);
        }
        c.positive("dirichlet_alpha", self.dirichlet_alpha);
        c.at_least("samples_per_client", self.samples_per_client, 1);
        c.at_least("test_samples", self.test_samples, 1);
        c.at_least("root_samples", self.root_samples, 1);
        c.at_least("pretrain_samples", self.pretrain_samples, 1);
        c.part("pretrain", &self.pretrain);
        c.part("local", &self.local);
        if let Some(m) = &self.malicious_local {
            c.part("malicious_local", m);
        }
        c.part("trigger", &self.trigger);
        if self.trigger.size > self.task.dim {
            c.fail(
                "trigger.size",
                format!(
                    "must be ≤ task.dim ({}), got {}",
                    self.task.dim, self.trigger.size
                ),
            );
        }
        if self.trigger.target_label as usize >= self.task.classes {
            c.fail(
                "trigger.target_label",
                format!(
                    "must be < task.classes ({}), got {}",
                    self.task.classes, self.trigger.target_label
                ),
            );
        }
        c.fraction("poison_fraction", self.poison_fraction);
        c.positive("boost", self.boost);
        if let Some(b) = self.norm_bound {
            c.positive("norm_bound", b);
        }
        c.fraction("lp_threshold", self.lp_threshold);
        c.part("polar", &self.polar);
        c.part("defense_config", &self.defense_config);
        let assumed = self.defense_config.assumed_attackers;
        if assumed * 2 >= self.clients {
            c.fail(
                "defense_config.assumed_attackers",
                format!(
                    "must be < clients / 2 ({}), got {assumed}",
                    self.clients.div_ceil(2)
                ),
            );
        }
    }
}

impl BackdoorParams {
    /// The image side when `task.dim` is the square of an even number.
    pub fn image_side(&self) -> Option<usize> {
        let side = (self.task.dim as f64).sqrt().round() as usize;
        (side * side == self.task.dim && side.is_multiple_of(2) && side > 0).then_some(side)
    }

    /// Examples a run takes out of the data: test, root, pretraining and every client's.
    pub fn examples_needed(&self) -> usize {
        [
            self.test_samples,
            self.root_samples,
            self.pretrain_samples,
            self.clients.saturating_mul(self.samples_per_client),
        ]
        .iter()
        .fold(0, |a, b| a.saturating_add(*b))
    }

    fn check_digits(&self, c: &mut Checks) {
        if (self.task.dim, self.task.classes) != (digits::PIXELS, digits::CLASSES) {
            c.fail(
                "task",
                format!(
                    "data: digits needs task.dim {} and task.classes {} (the stand-in's shape), got {} and {}",
                    digits::PIXELS,
                    digits::CLASSES,
                    self.task.dim,
                    self.task.classes
                ),
            );
        }
        if self.examples_needed() > digits::IMAGES {
            c.fail(
                "clients",
                format!(
                    "data: digits holds {} images; test + root + pretrain + clients × samples_per_client = {}",
                    digits::IMAGES,
                    self.examples_needed()
                ),
            );
        }
    }
}

impl Validate for TriggerParams {
    fn validate(&self, c: &mut Checks) {
        c.at_least("size", self.size, 1);
        c.finite("value", self.value);
    }
}
