//! Queueing-theory references for M/M/1 and M/M/c (Erlang C), used only by tests that check the
//! simulation — never by the simulation itself.

/// Erlang C: probability that an arrival waits, for c servers and offered load a = λ/μ (a < c).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let mut term = 1.0; // a^k / k!
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / f64::from(k);
        sum += term;
    }
    let last = term * a / f64::from(c); // a^c / c!
    let rho = a / f64::from(c);
    let tail = last / (1.0 - rho);
    tail / (sum + tail)
}

/// Mean waiting time in queue W_q of an M/M/c queue, seconds.
pub fn mmc_mean_wait_s(lambda: f64, mu: f64, c: u32) -> f64 {
    let a = lambda / mu;
    erlang_c(c, a) / (f64::from(c) * mu - lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_mm1_and_a_textbook_value() {
        // M/M/1: P(wait) = ρ.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        // c = 2, a = 1: C = 1/3 (Kleinrock, Queueing Systems vol. 1, eq. 3.40).
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        // M/M/1 W_q = ρ / (μ − λ).
        assert!((mmc_mean_wait_s(0.5, 1.0, 1) - 1.0).abs() < 1e-12);
    }
}
