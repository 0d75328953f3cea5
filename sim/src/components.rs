//! Reusable nexosim models shared by the families.
//!
//! Every component is a transaction-level model: one engine event per job, transfer, OPP switch,
//! allocation or tick — never one per clock cycle. Times on the wire are `f64` seconds since the
//! start of the run ([`crate::engine::t_s`]); quantities carry their unit in their name.
//!
//! | component | models | inputs | outputs | queries (repliers) |
//! |---|---|---|---|---|
//! | [`server::Server`] | `c` identical servers with a FIFO / priority queue | `arrive(Job)` | `done: Completed` | `stats → ServerStats` |
//! | [`link::Link`] | latency + bandwidth shared fairly by concurrent transfers | `send(Transfer)` | `delivered: Delivered` | `stats → LinkStats` |
//! | [`dvfs::DvfsDomain`] | DVFS domain: OPP table, transition latency, C·V²·f·u + static power | `set_opp(usize)`, `set_util(f64)` | `power: PowerSample`, `switched: OppSwitch` | `frequency_hz`, `state → DvfsState` |
//! | [`energy::EnergyMeter`] | integrates piecewise-constant power per source | `power(PowerSample)` | — | `report → EnergyReport`, `total_j` |
//! | [`memory::MemoryPool`] | capacity, alloc/free, peak, out-of-memory error | `free(u64)` | `usage: MemoryUsage` | `alloc(Alloc) → Result<(), OutOfMemory>`, `stats → MemoryStats` |
//! | [`ticker::Ticker`] | periodic clock | `stop(())` | `tick: u64` | `count → u64` |
//!
//! Typical wiring: a [`dvfs::DvfsDomain`]'s `power` output connects to
//! [`energy::EnergyMeter::power`] (many domains may share one meter, each with its own `domain`
//! id); a [`ticker::Ticker`] drives a governor that calls `set_opp`; a
//! [`server::Server`]'s `done` output feeds a sink or the next stage. Final figures are read after
//! the run with one `QuerySource` per component (nexosim returns only the first reply when several
//! repliers share a query source).

pub mod dvfs;
pub mod energy;
pub mod link;
pub mod memory;
pub mod server;
pub mod ticker;
