//! The participants' side of a round as one hub model (star topology, no N×N ports): each
//! participant's private downlink, local compute and private uplink are a single delay, after which
//! its update enters the coordinator's shared ingress link.

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::components::link::Transfer;
use sim::engine::secs;

/// An upload that will leave participant `client` after `delay_s` (download + compute + private
/// uplink time) in round `round`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedUpload {
    /// Round index.
    pub round: u32,
    /// Participant index.
    pub client: u32,
    /// Delay from the round start until the update is through the participant's uplink, seconds.
    pub delay_s: f64,
    /// Update size, bytes.
    pub bytes: u64,
}

/// Transfer id of (`round`, `client`) on the ingress link.
pub fn transfer_id(round: u32, client: u32) -> u64 {
    (u64::from(round) << 32) | u64::from(client)
}

/// Inverse of [`transfer_id`].
pub fn split_id(id: u64) -> (u32, u32) {
    ((id >> 32) as u32, id as u32)
}

/// All participants: schedules each planned upload and hands it to the ingress link when due.
#[derive(Default, Serialize, Deserialize)]
pub struct Clients {
    /// Updates entering the coordinator's ingress link.
    pub upload: Output<Transfer>,
}

#[Model]
impl Clients {
    /// Starts a round (input port): one self-scheduled event per participant that will upload.
    pub async fn start(&mut self, plan: Vec<PlannedUpload>, cx: &Context<Self>) {
        for p in plan {
            let t = Transfer {
                id: transfer_id(p.round, p.client),
                bytes: p.bytes,
            };
            if p.delay_s > 0.0 {
                cx.schedule_event(secs(p.delay_s), schedulable!(Self::send), t)
                    .expect("delay > 0");
            } else {
                self.upload.send(t).await;
            }
        }
    }

    /// A participant's update is through its uplink.
    #[nexosim(schedulable)]
    async fn send(&mut self, t: Transfer) {
        self.upload.send(t).await;
    }
}
