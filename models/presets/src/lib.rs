//! Built-in presets, embedded from `models/presets/<kind>/*.yaml` by `build.rs` (one constant per
//! folder, e.g. [`LLM`]); each number in those files names its public source in a comment.

include!(concat!(env!("OUT_DIR"), "/presets.rs"));
