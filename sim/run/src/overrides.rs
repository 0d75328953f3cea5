//! Command-line overrides of a scenario file (`--set KEY=VALUE`, Hydra-style dotted keys).
//!
//! Each override replaces one key of the parsed file before anything is checked, so the value is
//! typed by the family's params exactly as if it had been written in the file:
//!
//! ```text
//! --set params.arrival_rate=0.9     # params: nested mappings, created when missing
//! --set sweep.servers=[1,2,4]       # sweep: the rest of the key is one (dotted) sweep key
//! --set sweep.zip.soc=[pixel-7]     # a key of the sweep's `zip:` group
//! --set seed=7 --set replications=3 # top-level keys
//! ```
//!
//! Values are parsed as YAML (`0.9` is a number, `[1,2]` a list, `fast` a string).

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// The top-level keys of a scenario file.
pub const TOP_LEVEL: &[&str] = &[
    "name",
    "family",
    "model",
    "description",
    "seed",
    "replications",
    "common_random_numbers",
    "params",
    "sweep",
];

/// One `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Dotted key in the scenario file (`params.arrival_rate`, `sweep.servers`, `seed`).
    pub key: String,
    /// The value, parsed as YAML.
    pub value: Value,
    /// The override as the user wrote it, for messages and the manifest.
    pub text: String,
}

/// A malformed `--set` argument.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--set {text}: {message}")]
pub struct OverrideError {
    /// The argument as given.
    pub text: String,
    /// What is wrong.
    pub message: String,
}

impl FromStr for Override {
    type Err = OverrideError;

    /// Parses `KEY=VALUE`; the value is YAML.
    fn from_str(text: &str) -> Result<Self, OverrideError> {
        let fail = |message: String| OverrideError {
            text: text.to_owned(),
            message,
        };
        let (key, raw) = text.split_once('=').ok_or_else(|| {
            fail("expected KEY=VALUE, e.g. params.arrival_rate=0.9 or sweep.servers=[1,2,4]".into())
        })?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|part| part.trim().is_empty()) {
            return Err(fail(format!(
                "`{key}` is not a dotted key (parts separated by single dots)"
            )));
        }
        let top = key.split('.').next().unwrap_or(key);
        if !TOP_LEVEL.contains(&top) {
            return Err(fail(format!(
                "unknown top-level key `{top}`; valid keys: {}",
                TOP_LEVEL.join(", ")
            )));
        }
        if top != "params" && top != "sweep" && key != top {
            return Err(fail(format!(
                "`{top}` takes a single value, not a dotted key below it"
            )));
        }
        if raw.trim().is_empty() {
            return Err(fail(
                "give a value after `=` (write '' for an empty string)".into(),
            ));
        }
        let value: Value = serde_norway::from_str(raw)
            .map_err(|e| fail(format!("value is not valid YAML: {e}")))?;
        Ok(Override {
            key: key.to_owned(),
            value,
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Override {
    /// Writes this override into `file`, the scenario file parsed as a tree (a mapping).
    pub fn apply(&self, file: &mut Value) -> Result<(), OverrideError> {
        let fail = |message: String| OverrideError {
            text: self.text.clone(),
            message,
        };
        let Value::Object(root) = file else {
            return Err(fail("the scenario file is not a mapping".into()));
        };
        let mut parts = self.key.splitn(2, '.');
        let top = parts.next().unwrap_or_default();
        let rest = parts.next();
        match (top, rest) {
            (_, None) => {
                root.insert(top.to_owned(), self.value.clone());
            }
            ("sweep", Some(rest)) => {
                let sweep = mapping(root, "sweep").map_err(fail)?;
                match rest.strip_prefix("zip.") {
                    Some(key) => {
                        let zip = mapping(sweep, "zip").map_err(|m| fail(format!("sweep.{m}")))?;
                        zip.insert(key.to_owned(), self.value.clone());
                    }
                    None => {
                        sweep.insert(rest.to_owned(), self.value.clone());
                    }
                }
            }
            (_, Some(rest)) => {
                let mut node = mapping(root, top).map_err(fail)?;
                let mut path = top.to_owned();
                let parts: Vec<&str> = rest.split('.').collect();
                for part in &parts[..parts.len() - 1] {
                    node = mapping(node, part).map_err(|m| fail(format!("{path}.{m}")))?;
                    path = format!("{path}.{part}");
                }
                node.insert(parts[parts.len() - 1].to_owned(), self.value.clone());
            }
        }
        Ok(())
    }

    /// Whether an error about dotted `key` concerns this override: the same key, a key below it,
    /// or a mapping above it (an unknown-field error is reported at the parent).
    pub fn concerns(&self, key: &str) -> Option<Relation> {
        let mine = self.key.as_str();
        if key == mine || key.starts_with(&format!("{mine}.")) {
            Some(Relation::Set)
        } else if mine.starts_with(&format!("{key}.")) {
            Some(Relation::Inside)
        } else {
            None
        }
    }
}

/// How an error's key relates to an override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The override set this key (or a mapping containing it): the file's text is not at fault.
    Set,
    /// The override set a key inside this one (e.g. an unknown field reported at its parent).
    Inside,
}

/// The mapping at `key` of `map`, created when missing; an error names `key` when it holds a
/// non-mapping value.
fn mapping<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let node = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if node.is_null() {
        *node = Value::Object(Map::new());
    }
    match node {
        Value::Object(m) => Ok(m),
        other => Err(format!(
            "{key} is `{other}` in the file, not a mapping: set `{key}` as a whole instead"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(text: &str, file: &mut Value) -> Result<(), OverrideError> {
        text.parse::<Override>()?.apply(file)
    }

    #[test]
    fn values_are_yaml() {
        let o: Override = "sweep.servers=[1, 2,4]".parse().unwrap();
        assert_eq!(o.value, json!([1, 2, 4]));
        let o: Override = "params.chip=fast".parse().unwrap();
        assert_eq!(o.value, json!("fast"));
        let o: Override = "params.rate=0.9".parse().unwrap();
        assert_eq!(o.value, json!(0.9));
        let o: Override = "params.w={requests: 3}".parse().unwrap();
        assert_eq!(o.value, json!({"requests": 3}));
        let o: Override = "params.s=a=b".parse().unwrap();
        assert_eq!(o.value, json!("a=b"));
    }

    #[test]
    fn malformed_arguments_are_refused_with_the_reason() {
        for (bad, why) in [
            ("params.rate", "expected KEY=VALUE"),
            ("=3", "not a dotted key"),
            ("params..rate=3", "not a dotted key"),
            ("parms.rate=3", "unknown top-level key `parms`"),
            ("seed.x=3", "single value"),
            ("params.rate=", "give a value"),
            ("params.rate=[1,", "not valid YAML"),
        ] {
            let e = bad.parse::<Override>().unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
            assert!(e.to_string().starts_with(&format!("--set {bad}:")), "{e}");
        }
    }

    #[test]
    fn params_nest_and_sweep_keys_stay_dotted() {
        let mut file =
            json!({"name": "t", "params": {"a": {"b": 1}}, "sweep": {"zip": {"x": [1]}}});
        set("params.a.c.d=2", &mut file).unwrap();
        set("params.a.b=3", &mut file).unwrap();
        set("sweep.workload.requests=[5, 6]", &mut file).unwrap();
        set("sweep.zip.y=[7]", &mut file).unwrap();
        set("seed=9", &mut file).unwrap();
        assert_eq!(
            file,
            json!({
                "name": "t",
                "seed": 9,
                "params": {"a": {"b": 3, "c": {"d": 2}}},
                "sweep": {"workload.requests": [5, 6], "zip": {"x": [1], "y": [7]}}
            })
        );
    }

    #[test]
    fn setting_below_a_scalar_names_the_scalar() {
        let mut file = json!({"params": {"chip": "fast"}});
        let e = set("params.chip.freq_mhz=5", &mut file).unwrap_err();
        assert!(e.message.contains("params.chip is `\"fast\"`"), "{e}");
    }

    #[test]
    fn an_override_concerns_its_key_the_keys_below_and_its_parents() {
        let o: Override = "params.a.b=1".parse().unwrap();
        assert_eq!(o.concerns("params.a.b"), Some(Relation::Set));
        assert_eq!(o.concerns("params.a.b.c"), Some(Relation::Set));
        assert_eq!(o.concerns("params.a"), Some(Relation::Inside));
        assert_eq!(o.concerns("params.a.bb"), None);
        assert_eq!(o.concerns("params.x"), None);
    }
}
