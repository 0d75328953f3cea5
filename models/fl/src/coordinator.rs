//! The coordinator: opens a round with a deadline, counts the updates that reach it on time, and
//! closes the round when every expected update has arrived or the deadline passes, whichever is
//! first. Updates of a closed round arrive late and are discarded (but used the ingress link).

use nexosim::model::{Context, Model, schedulable};
use nexosim::ports::Output;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::components::link::Delivered;
use sim::engine::{secs, t_s};

use super::clients::split_id;

/// Opens round `round`, expecting `expected` uploads within `deadline_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoundOpen {
    /// Round index.
    pub round: u32,
    /// Uploads that will be sent (selected, online, not dropped).
    pub expected: u32,
    /// Deadline after the open, seconds.
    pub deadline_s: f64,
}

/// An update that reached the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Arrival {
    /// Round the update belongs to.
    pub round: u32,
    /// Participant.
    pub client: u32,
    /// Arrival time, seconds.
    pub t_s: f64,
    /// True when it arrived before its round closed.
    pub on_time: bool,
}

/// A round that closed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoundClosed {
    /// Round index.
    pub round: u32,
    /// Close time, seconds.
    pub t_s: f64,
    /// True when the deadline closed it (some expected uploads missing).
    pub by_deadline: bool,
}

/// Round bookkeeping of the coordinator.
#[derive(Default, Serialize, Deserialize)]
pub struct Coordinator {
    /// Every update that arrives, on time or late.
    pub arrival: Output<Arrival>,
    /// Every round close.
    pub closed: Output<RoundClosed>,
    round: u32,
    expected: u32,
    got: u32,
    open: bool,
}

#[Model]
impl Coordinator {
    /// Opens a round (input port).
    pub async fn open(&mut self, o: RoundOpen, cx: &Context<Self>) {
        self.round = o.round;
        self.expected = o.expected;
        self.got = 0;
        self.open = true;
        if o.expected == 0 {
            self.close(false, cx).await;
        } else {
            cx.schedule_event(
                secs(o.deadline_s.max(1e-9)),
                schedulable!(Self::deadline),
                o.round,
            )
            .expect("deadline > 0");
        }
    }

    /// An update reached the coordinator (input port, from the ingress link).
    pub async fn delivered(&mut self, d: Delivered, cx: &Context<Self>) {
        let (round, client) = split_id(d.id);
        let on_time = self.open && round == self.round;
        self.arrival
            .send(Arrival {
                round,
                client,
                t_s: d.delivered_s,
                on_time,
            })
            .await;
        if on_time {
            self.got += 1;
            if self.got == self.expected {
                self.close(false, cx).await;
            }
        }
    }

    #[nexosim(schedulable)]
    async fn deadline(&mut self, round: u32, cx: &Context<Self>) {
        if self.open && round == self.round {
            self.close(true, cx).await;
        }
    }

    async fn close(&mut self, by_deadline: bool, cx: &Context<Self>) {
        self.open = false;
        self.closed
            .send(RoundClosed {
                round: self.round,
                t_s: t_s(cx.time()),
                by_deadline,
            })
            .await;
    }
}
