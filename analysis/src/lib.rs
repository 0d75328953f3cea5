//! `analysis`: what sysim does with result tables once runs are over.
//!
//! - [`load`]: read the runs and series tables of results folders (or shard patterns) into polars
//!   frames;
//! - [`mod@merge`]: combine the shards of a split sweep into one results folder;
//! - [`claims`]: a paper's headline claims over result tables: kinds, paired 95% intervals over
//!   replications, censoring, equal resources;
//! - [`summary`]: mean and 95% confidence interval of a metric over replications;
//! - [`figure`]: paper-style line, bar, CDF and scatter figures as PNG and SVG;
//! - [`gallery`]: the offline `index.html` over every paper's figures and claims.

pub mod claims;
pub mod error;
pub mod figure;
pub mod gallery;
mod glob;
pub mod load;
pub mod merge;
pub mod report;
pub mod summary;

pub use error::{AnalysisError, Result};
pub use figure::{Kind, PlotSpec, plot};
pub use load::{load_runs, load_series};
pub use merge::{MergeSummary, merge};
pub use summary::summarise;
