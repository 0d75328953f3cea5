//! From contribution scores to rewards: each round's share of the budget is split in proportion to
//! the on-time participants' scores (integer gwei, floored; the remainder stays in the contract).

use super::network::RoundRecord;

/// One gwei in wei.
pub const GWEI: u128 = 1_000_000_000;

/// Per-round rewards of every participant, gwei (`n` entries, zero for those not aggregated).
pub fn round_rewards(rec: &RoundRecord, n: usize, round_budget_gwei: u64) -> Vec<u64> {
    let mut out = vec![0u64; n];
    let total: f64 = rec.contributions.iter().sum();
    if total <= 0.0 {
        return out;
    }
    for (&i, &s) in rec.on_time.iter().zip(&rec.contributions) {
        out[i] = (round_budget_gwei as f64 * s / total).floor() as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_split_the_budget_by_score() {
        let rec = RoundRecord {
            on_time: vec![1, 3],
            contributions: vec![1.0, 3.0],
            ..RoundRecord::default()
        };
        let r = round_rewards(&rec, 4, 1000);
        assert_eq!(r, vec![0, 250, 0, 750]);
    }
}
