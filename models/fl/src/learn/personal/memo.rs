//! Per-process memo of what every method of one replication computes identically. Under common
//! random numbers the runs of a replication (one per method) share the run seed and every param
//! except `method`, `baselines` and `oracle` (run after training), so the pretrained initial model and FedAvg's accuracy curve
//! (the convergence target's reference) are the same computation in each: same streams, same
//! data. They are computed once and reused, which changes no number (tested).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sim::experiment::{RunContext, RunError};

use super::params::PersonalParams;
use crate::learn::common::model_err;
use crate::learn::nn::Weights;

/// Run seed and the params without `method`, `baselines` and `oracle`, as JSON.
pub type Key = (u64, String);

/// Entries kept per memo before it starts over (each is one small model or curve).
const ENTRIES: usize = 128;

/// One memo: values by [`Key`].
pub struct Memo<T>(OnceLock<Mutex<HashMap<Key, T>>>);

/// Pretrained initial models.
pub static INIT: Memo<Weights> = Memo::new();

/// FedAvg's mean per-client accuracy after each round.
pub static FEDAVG: Memo<Vec<f64>> = Memo::new();

/// The memo key of the run of `p` under `ctx`.
pub fn key(p: &PersonalParams, ctx: &RunContext) -> Result<Key, RunError> {
    let mut setup = serde_json::to_value(p).map_err(model_err)?;
    if let Some(m) = setup.as_object_mut() {
        m.remove("method");
        m.remove("baselines");
        m.remove("oracle");
    }
    Ok((ctx.seed, setup.to_string()))
}

impl<T: Clone> Memo<T> {
    /// An empty memo (the two statics above are the only ones).
    const fn new() -> Self {
        Self(OnceLock::new())
    }

    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Key, T>>, RunError> {
        self.0
            .get_or_init(Default::default)
            .lock()
            .map_err(model_err)
    }

    /// Keeps `value` under `key`.
    pub fn put(&self, key: Key, value: T) -> Result<(), RunError> {
        let mut m = self.map()?;
        if m.len() >= ENTRIES {
            m.clear();
        }
        m.insert(key, value);
        Ok(())
    }

    /// The value under `key`, computed by `make` (and kept) when absent. The lock is not held
    /// while `make` runs: two runs may compute the same value at once, with the same result.
    pub fn get_or(
        &self,
        key: Key,
        make: impl FnOnce() -> Result<T, RunError>,
    ) -> Result<T, RunError> {
        if let Some(hit) = self.map()?.get(&key) {
            return Ok(hit.clone());
        }
        let value = make()?;
        self.put(key, value.clone())?;
        Ok(value)
    }
}
