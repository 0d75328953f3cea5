//! Server-side aggregation of client LoRA adapters: FedIT (separate A/B averaging), FFA-LoRA (frozen A),
//! FLoRA (stacking, merged into the base), FlexLoRA (SVD of the true average, `B = U_rΣ_r`, `A = V_rᵀ`,
//! remainder dropped) and FedMomentum (SVD of the true average, `B = U_r√Σ_r`, `A = √Σ_rV_rᵀ`, remainder
//! merged into the base — or dropped, for the ablation).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sim::rng::Rng;

use super::adapter::{Adapters, Lora};
use crate::learn::svd::{self, SvdFailed};

/// A federated LoRA aggregation rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum LoraMethod {
    /// FedIT: average `A` and `B` separately (the product of averages is not the average product).
    #[serde(rename = "fedit")]
    FedIt,
    /// FFA-LoRA: `A` frozen at its shared random initialisation, only `B` trained and averaged (exact).
    #[serde(rename = "ffa-lora")]
    FfaLora,
    /// FLoRA: the server stacks every client's modules (exact `Σ pᵢBᵢAᵢ`), clients merge the stack into
    /// their base and restart from fresh adapters; the downlink carries the whole stack.
    #[serde(rename = "flora")]
    FLora,
    /// FlexLoRA: SVD of `Σ pᵢBᵢAᵢ`, rank-r `B = U_rΣ_r`, `A = V_rᵀ`; the remainder is discarded.
    #[serde(rename = "flexlora")]
    FlexLora,
    /// FedMomentum: SVD of `Σ pᵢBᵢAᵢ`, rank-r `B = U_r√Σ_r`, `A = √Σ_rV_rᵀ`; remainder merged into the base.
    #[serde(rename = "fedmomentum")]
    FedMomentum,
    /// FedMomentum without the residual merge (ablation).
    #[serde(rename = "fedmomentum-no-residual")]
    FedMomentumNoResidual,
}

impl LoraMethod {
    /// The scenario spelling (metric-name suffix).
    pub fn name(self) -> &'static str {
        match self {
            Self::FedIt => "fedit",
            Self::FfaLora => "ffa-lora",
            Self::FLora => "flora",
            Self::FlexLora => "flexlora",
            Self::FedMomentum => "fedmomentum",
            Self::FedMomentumNoResidual => "fedmomentum-no-residual",
        }
    }

    /// Whether clients keep `A` fixed.
    pub fn freezes_a(self) -> bool {
        self == Self::FfaLora
    }

    /// Floats one client uploads for one layer's adapter.
    pub fn uplink_floats(self, l: &Lora) -> usize {
        if self.freezes_a() {
            l.b.len()
        } else {
            l.floats()
        }
    }
}

/// One layer's aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAggregate {
    /// The adapter every client starts the next round from.
    pub lora: Lora,
    /// Dense update merged into the base weights (`d_out × d_in`), if any.
    pub base_delta: Option<Vec<f64>>,
    /// Floats each client downloads for this layer.
    pub downlink_floats: usize,
    /// Frobenius norm of the part of `Σ pᵢBᵢAᵢ` that the new global model does not contain.
    pub lost_norm: f64,
    /// Numerical rank of `Σ pᵢBᵢAᵢ` (singular values above [`RANK_TOL`] × σ₁): above r when the
    /// clients' rank-r updates point in different directions.
    pub update_rank: usize,
    /// Share of `‖Σ pᵢBᵢAᵢ‖²_F` beyond its top r singular directions (what no rank-r factor pair
    /// can hold).
    pub tail_energy: f64,
    /// The same tail as a share of the round's update `‖Σ pᵢBᵢAᵢ − B_gA_g‖²_F` (`B_gA_g`: the global
    /// adapter the clients started from; ≤ 1, since `B_gA_g` has rank ≤ r): how much of what the
    /// round learned no rank-r adapter can hold.
    pub update_tail_energy: f64,
}

/// Relative singular-value threshold of [`LayerAggregate::update_rank`] (f32 factors: products
/// carry ≈ 1e-7 relative noise, so 1e-4 separates real directions from rounding).
pub const RANK_TOL: f64 = 1e-4;

/// `Σ pᵢ·Bᵢ·Aᵢ`, row-major `d_out × d_in` (the true weighted average of the client updates).
pub fn true_average(clients: &[&Lora], p: &[f64]) -> Vec<f64> {
    let mut sum = vec![0.0; clients[0].d_out * clients[0].d_in];
    for (c, w) in clients.iter().zip(p) {
        for (s, v) in sum.iter_mut().zip(c.product()) {
            *s += w * v;
        }
    }
    sum
}

fn weighted(vs: impl Iterator<Item = (f64, Vec<f32>)>) -> Vec<f32> {
    let mut out: Vec<f64> = Vec::new();
    for (w, v) in vs {
        if out.is_empty() {
            out = vec![0.0; v.len()];
        }
        for (o, x) in out.iter_mut().zip(v) {
            *o += w * f64::from(x);
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

fn frob_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Aggregates one layer's client adapters with weights `p` (summing to 1); `global` is the adapter
/// they started from (for [`LayerAggregate::update_tail_energy`]).
pub fn aggregate_layer(
    method: LoraMethod,
    clients: &[&Lora],
    p: &[f64],
    global: &Lora,
    rng: &mut Rng,
) -> Result<LayerAggregate, SvdFailed> {
    let first = clients[0];
    let (rank, d_in, d_out) = (first.rank, first.d_in, first.d_out);
    let avg = true_average(clients, p);
    let t = svd::truncated(&avg, d_out, d_in, rank)?;
    let (update_rank, tail_energy) = (t.numerical_rank(RANK_TOL), t.tail_energy());
    let update = frob_diff(&avg, &global.product()).powi(2);
    let update_tail_energy = if update > 0.0 {
        (t.discarded_norm().powi(2) / update).min(1.0)
    } else {
        0.0
    };
    let factor_floats = rank * (d_in + d_out);
    match method {
        LoraMethod::FedIt | LoraMethod::FfaLora => {
            let a = if method.freezes_a() {
                first.a.clone()
            } else {
                weighted(clients.iter().zip(p).map(|(c, w)| (*w, c.a.clone())))
            };
            let b = weighted(clients.iter().zip(p).map(|(c, w)| (*w, c.b.clone())));
            let lora = Lora {
                a,
                b,
                ..first.clone()
            };
            let lost_norm = frob_diff(&avg, &lora.product());
            let downlink_floats = if method.freezes_a() {
                lora.b.len()
            } else {
                factor_floats
            };
            Ok(LayerAggregate {
                lora,
                base_delta: None,
                downlink_floats,
                lost_norm,
                update_rank,
                tail_energy,
                update_tail_energy,
            })
        }
        LoraMethod::FLora => Ok(LayerAggregate {
            lora: Lora::init(rank, d_in, d_out, rng),
            base_delta: Some(avg),
            downlink_floats: clients.len() * factor_floats,
            lost_norm: 0.0,
            update_rank,
            tail_energy,
            update_tail_energy,
        }),
        LoraMethod::FlexLora | LoraMethod::FedMomentum | LoraMethod::FedMomentumNoResidual => {
            let mut a = vec![0.0f32; rank * d_in];
            let mut b = vec![0.0f32; d_out * rank];
            for k in 0..t.rank {
                let s = t.sigma[k];
                let (sb, sa) = if method == LoraMethod::FlexLora {
                    (s, 1.0)
                } else {
                    (s.sqrt(), s.sqrt())
                };
                for i in 0..d_out {
                    b[i * rank + k] = (t.u[i * t.rank + k] * sb) as f32;
                }
                for j in 0..d_in {
                    a[k * d_in + j] = (t.v[j * t.rank + k] * sa) as f32;
                }
            }
            let lora = Lora {
                a,
                b,
                ..first.clone()
            };
            let kept = lora.product();
            let residual: Vec<f64> = avg.iter().zip(&kept).map(|(x, y)| x - y).collect();
            if method == LoraMethod::FedMomentum {
                let nonzero = t.sigma.iter().filter(|s| **s > 1e-12).count();
                let residual_floats =
                    (d_out * d_in).min(nonzero.saturating_sub(t.rank) * (d_in + d_out));
                Ok(LayerAggregate {
                    lora,
                    base_delta: Some(residual),
                    downlink_floats: factor_floats + residual_floats,
                    lost_norm: 0.0,
                    update_rank,
                    tail_energy,
                    update_tail_energy,
                })
            } else {
                Ok(LayerAggregate {
                    lora,
                    base_delta: None,
                    downlink_floats: factor_floats,
                    lost_norm: t.discarded_norm(),
                    update_rank,
                    tail_energy,
                    update_tail_energy,
                })
            }
        }
    }
}

/// Aggregates whole-model adapters that started from `global`: per layer, see [`aggregate_layer`].
pub fn aggregate(
    method: LoraMethod,
    clients: &[Adapters],
    p: &[f64],
    global: &Adapters,
    rng: &mut Rng,
) -> Result<Vec<LayerAggregate>, SvdFailed> {
    (0..clients[0].len())
        .map(|l| {
            let layer: Vec<&Lora> = clients.iter().map(|c| &c[l]).collect();
            aggregate_layer(method, &layer, p, &global[l], rng)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lora(a: Vec<f32>, b: Vec<f32>, rank: usize, d_in: usize, d_out: usize) -> Lora {
        Lora {
            rank,
            d_in,
            d_out,
            a,
            b,
        }
    }

    #[test]
    fn separate_averaging_is_not_the_average_of_products() {
        // Client 1 adds e1·e1ᵀ, client 2 adds e2·e2ᵀ: the average is I/2, FedIT gives 11ᵀ/4.
        let c1 = lora(vec![1.0, 0.0], vec![1.0, 0.0], 1, 2, 2);
        let c2 = lora(vec![0.0, 1.0], vec![0.0, 1.0], 1, 2, 2);
        let p = [0.5, 0.5];
        let mut rng = sim::rng::stream(1, "agg");
        let truth = true_average(&[&c1, &c2], &p);
        assert_eq!(truth, vec![0.5, 0.0, 0.0, 0.5]);
        // Both started from a zero adapter: the round's update is the whole aggregate.
        let zero = lora(vec![0.0; 2], vec![0.0; 2], 1, 2, 2);
        let fedit = aggregate_layer(LoraMethod::FedIt, &[&c1, &c2], &p, &zero, &mut rng).unwrap();
        assert_eq!(fedit.lora.product(), vec![0.25; 4]);
        assert!((fedit.lost_norm - frob_diff(&truth, &[0.25; 4])).abs() < 1e-12);
        assert!(fedit.lost_norm > 0.3);
        // Two rank-1 updates in different directions: the true aggregate has rank 2.
        assert_eq!(fedit.update_rank, 2);
        assert!((fedit.tail_energy - 0.5).abs() < 1e-12);
        assert!((fedit.update_tail_energy - 0.5).abs() < 1e-12);
        // Started from c1's own direction, the round added only e2·e2ᵀ/2 − e1·e1ᵀ/2: the tail
        // (e2·e2ᵀ/2, energy 1/4) is half of that update's energy (1/2).
        let from_c1 = lora(vec![1.0, 0.0], vec![1.0, 0.0], 1, 2, 2);
        let again =
            aggregate_layer(LoraMethod::FedIt, &[&c1, &c2], &p, &from_c1, &mut rng).unwrap();
        assert!((again.update_tail_energy - 0.5).abs() < 1e-12);
        assert!((again.tail_energy - 0.5).abs() < 1e-12);
        // FedMomentum keeps the dominant direction and merges the rest: nothing is lost.
        let fm =
            aggregate_layer(LoraMethod::FedMomentum, &[&c1, &c2], &p, &zero, &mut rng).unwrap();
        let total: Vec<f64> = fm
            .lora
            .product()
            .iter()
            .zip(fm.base_delta.as_ref().unwrap())
            .map(|(a, b)| a + b)
            .collect();
        assert!(frob_diff(&total, &truth) < 1e-6);
    }

    #[test]
    fn identical_client_updates_are_reproduced_exactly() {
        let mut rng = sim::rng::stream(2, "agg");
        let mut c = Lora::init(3, 7, 5, &mut rng);
        let normal = rand_distr::Normal::new(0.0f32, 1.0).unwrap();
        c.b = (0..15)
            .map(|_| rand_distr::Distribution::sample(&normal, &mut rng))
            .collect();
        let clients = [&c, &c, &c, &c];
        let p = [0.1, 0.2, 0.3, 0.4];
        for m in [
            LoraMethod::FedMomentum,
            LoraMethod::FedMomentumNoResidual,
            LoraMethod::FlexLora,
            LoraMethod::FedIt,
        ] {
            let agg = aggregate_layer(m, &clients, &p, &c, &mut rng).unwrap();
            let err = frob_diff(&agg.lora.product(), &c.product());
            assert!(err < 1e-5, "{m:?}: {err}");
            if let Some(d) = &agg.base_delta {
                assert!(d.iter().all(|v| v.abs() < 1e-5), "{m:?} residual");
            }
        }
    }

    #[test]
    fn svd_methods_lose_exactly_the_discarded_singular_values() {
        let mut rng = sim::rng::stream(3, "agg");
        let normal = rand_distr::Normal::new(0.0f32, 1.0).unwrap();
        let clients: Vec<Lora> = (0..4)
            .map(|_| {
                let mut c = Lora::init(2, 6, 5, &mut rng);
                c.b = (0..10)
                    .map(|_| rand_distr::Distribution::sample(&normal, &mut rng))
                    .collect();
                c
            })
            .collect();
        let refs: Vec<&Lora> = clients.iter().collect();
        let p = [0.25; 4];
        let truth = true_average(&refs, &p);
        let t = svd::truncated(&truth, 5, 6, 2).unwrap();
        let zero = Lora::init(2, 6, 5, &mut rng);
        let flex = aggregate_layer(LoraMethod::FlexLora, &refs, &p, &zero, &mut rng).unwrap();
        let err = frob_diff(&truth, &flex.lora.product());
        assert!((err - t.discarded_norm()).abs() < 1e-5, "{err}");
        assert!((flex.lost_norm - t.discarded_norm()).abs() < 1e-9);
        let fm = aggregate_layer(LoraMethod::FedMomentum, &refs, &p, &zero, &mut rng).unwrap();
        // The step gain of the published factors: σ₁² + 1 for FlexLoRA, 2σ₁ for FedMomentum.
        let s1 = t.sigma[0];
        let flex_gain = flex.lora.step_gain().unwrap();
        assert!(
            (flex_gain - (s1 * s1 + 1.0)).abs() < 1e-4 * flex_gain,
            "{flex_gain}"
        );
        let fm_gain = fm.lora.step_gain().unwrap();
        assert!((fm_gain - 2.0 * s1).abs() < 1e-4 * fm_gain, "{fm_gain}");
        let res = fm.base_delta.unwrap();
        let res_norm = res.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((res_norm - t.discarded_norm()).abs() < 1e-5);
        // FedMomentum's factors are balanced: ‖B‖_F = ‖A‖_F.
        let nb: f32 = fm.lora.b.iter().map(|v| v * v).sum();
        let na: f32 = fm.lora.a.iter().map(|v| v * v).sum();
        assert!((nb - na).abs() < 1e-4 * na.max(1.0));
    }
}
