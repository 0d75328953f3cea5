//! When participants are paid: for every (participant, round) with a reward, the time from the
//! round's close until the payout that covers it was included on chain. Congestion and challenge
//! windows delay finality and therefore these payments.

/// Reward delays of a settlement, built as payouts are included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RewardDelays {
    /// Delay of every paid (participant, round) reward, seconds, in the order paid.
    pub paid_s: Vec<f64>,
    /// Per round: mean delay of its paid rewards, seconds (NaN when none was paid).
    pub round_mean_s: Vec<f64>,
    /// Per round: rewards paid.
    pub round_paid: Vec<u64>,
    /// Rewarded (participant, round) pairs never paid (set by [`RewardDelays::finish`]).
    pub unpaid: u64,
}

impl RewardDelays {
    /// No payment yet over `rounds` rounds.
    pub fn new(rounds: usize) -> Self {
        Self {
            paid_s: Vec::new(),
            round_mean_s: vec![0.0; rounds],
            round_paid: vec![0; rounds],
            unpaid: 0,
        }
    }

    /// A payout included at `t_s` paid participants `who` their rewards of rounds `from..to`
    /// (`rewards[r][p]` gwei, rounds closed at `close_s[r]`).
    pub fn paid(
        &mut self,
        t_s: f64,
        who: &[usize],
        rounds: std::ops::Range<usize>,
        rewards: &[Vec<u64>],
        close_s: &[f64],
    ) {
        for r in rounds {
            for &p in who {
                if rewards[r][p] > 0 {
                    let d = t_s - close_s[r];
                    self.paid_s.push(d);
                    self.round_mean_s[r] += d;
                    self.round_paid[r] += 1;
                }
            }
        }
    }

    /// The delays with per-round sums turned into means and the unpaid rewards counted.
    pub fn finish(&self, rewards: &[Vec<u64>]) -> Self {
        let rewarded: u64 = rewards
            .iter()
            .map(|row| row.iter().filter(|&&g| g > 0).count() as u64)
            .sum();
        let paid: u64 = self.round_paid.iter().sum();
        Self {
            paid_s: self.paid_s.clone(),
            round_mean_s: self
                .round_mean_s
                .iter()
                .zip(&self.round_paid)
                .map(|(&s, &k)| if k > 0 { s / k as f64 } else { f64::NAN })
                .collect(),
            round_paid: self.round_paid.clone(),
            unpaid: rewarded - paid,
        }
    }

    /// Mean delay over the paid rewards, seconds (NaN when none).
    pub fn mean_s(&self) -> f64 {
        if self.paid_s.is_empty() {
            f64::NAN
        } else {
            self.paid_s.iter().sum::<f64>() / self.paid_s.len() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_count_each_rewarded_pair_once_from_its_round_close() {
        let rewards = vec![vec![5, 0, 1], vec![2, 2, 0]];
        let close = [60.0, 120.0];
        let mut d = RewardDelays::new(2);
        d.paid(300.0, &[0, 1], 0..2, &rewards, &close);
        let f = d.finish(&rewards);
        assert_eq!(f.paid_s, vec![240.0, 180.0, 180.0]);
        assert_eq!(f.round_mean_s, vec![240.0, 180.0]);
        assert_eq!(f.unpaid, 1, "participant 2's round-0 reward");
        assert_eq!(f.mean_s(), 200.0);
    }
}
