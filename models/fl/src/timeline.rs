//! The FL timeline (`sysim run --trace DIR`): rounds on the server, each participant's check-in,
//! download, local training and upload, and the settlement chain's blocks and transactions.
//!
//! Tracks, grouped by the network's name (`fl`, or the method of a learning study, e.g.
//! `fedmomentum`): `<group>/rounds` (slice `round k` from open to close, then `aggregate` until the
//! next round opens); `<group>/client 7` (slices `check-in`, `download`, `train`, `upload`, and
//! `ingress` while the update queued at the server's link; a late update has no `ingress` slice);
//! `chain/blocks` (one slot-long slice per block that carried or delayed settlement transactions);
//! `chain/transactions` (an instant per included transaction, named by its contract function, with
//! gas, fee and the wait since submission). The base fee and settlement gas per block come from the
//! run's series as counters `chain/base_fee_gwei` and `chain/settlement_gas`.

use sim::trace::Trace;

use super::network::NetworkRun;
use super::settle::SettleReport;

/// Records the rounds and participants of `run` under process `group` (next rounds open
/// `aggregation_s` after a close).
pub fn network(run: &NetworkRun, aggregation_s: f64, group: &str, trace: &mut Trace) {
    if !trace.is_on() {
        return;
    }
    let rounds = format!("{group}/rounds");
    for r in &run.rounds {
        trace.slice_with(
            &rounds,
            &format!("round {}", r.round),
            r.open_s,
            r.close_s - r.open_s,
            &[
                ("selected", r.selected as f64),
                ("on_time", r.on_time.len() as f64),
                ("late", r.late as f64),
                ("dropped", r.dropped.len() as f64),
                ("offline", r.offline as f64),
                ("accuracy", r.eval.accuracy),
            ],
        );
        trace.slice(&rounds, "aggregate", r.close_s, aggregation_s);
        for c in &r.clients {
            let track = format!("{group}/client {}", c.client);
            let mut t = r.open_s;
            for (name, dur) in [
                ("check-in", c.checkin_s),
                ("download", c.download_s),
                ("train", c.train_s),
                ("upload", c.upload_s),
            ] {
                if dur > 0.0 {
                    trace.slice_with(&track, name, t, dur, &[("round", f64::from(r.round))]);
                }
                t += dur;
            }
            if c.arrival_s.is_finite() && c.arrival_s > t {
                trace.slice_with(
                    &track,
                    "ingress",
                    t,
                    c.arrival_s - t,
                    &[("round", f64::from(r.round))],
                );
            }
        }
    }
}

/// Records settlement's blocks (each `slot_s` long) and included transactions.
pub fn chain(rep: &SettleReport, slot_s: f64, trace: &mut Trace) {
    if !trace.is_on() {
        return;
    }
    for b in &rep.blocks {
        trace.slice_with(
            "chain/blocks",
            &format!("block {}", b.number),
            b.t_s,
            slot_s,
            &[
                ("settlement_gas", b.settlement_gas as f64),
                ("background_gas", b.background_gas as f64),
                ("waiting_txs", b.waiting as f64),
                ("base_fee_gwei", b.base_fee_wei as f64 / 1e9),
            ],
        );
    }
    for tx in &rep.txs {
        trace.instant(
            "chain/transactions",
            tx.label,
            tx.t_s,
            &[
                ("block", tx.block as f64),
                ("gas", tx.gas as f64),
                ("fee_gwei", tx.fee_wei as f64 / 1e9),
                ("wait_s", tx.t_s - tx.submitted_s),
                ("success", f64::from(u8::from(tx.success))),
            ],
        );
    }
}
