//! Sweeps: a cartesian product over dotted paths into `params`, with `zip:` groups whose lists
//! advance together (one axis of the product).
//!
//! ```yaml
//! sweep:
//!   governor: [stock, fuse]            # axis 1
//!   zip:                               # axis 2: soc[i] goes with llm[i]
//!     soc: [pixel-7, sd-8-gen-3]
//!     llm: [tinyllama-q4, llama-2-7b-q4]
//! ```

use serde_json::{Map, Value};

/// One axis of the product: one key, or several zipped keys, and the value of each key at each point.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted paths into params that this axis sets.
    pub keys: Vec<String>,
    /// `values[i][k]`: value of `keys[k]` at point `i` of this axis.
    pub values: Vec<Vec<Value>>,
    /// Whether the axis is a `zip:` group (its keys are written `zip.<key>` in the file).
    pub zipped: bool,
}

/// A malformed sweep: the dotted key within `sweep` and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepError {
    /// Key inside `sweep` (e.g. `governor` or `zip.soc`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn list<'a>(key: &str, v: &'a Value) -> Result<&'a Vec<Value>, SweepError> {
    match v {
        Value::Array(items) if !items.is_empty() => Ok(items),
        Value::Array(_) => Err(SweepError {
            key: key.to_owned(),
            message: "empty sweep list: give at least one value".into(),
        }),
        other => Err(SweepError {
            key: key.to_owned(),
            message: format!("expected a list of values to sweep, got `{other}`"),
        }),
    }
}

fn zip_group(prefix: &str, group: &Map<String, Value>) -> Result<Axis, SweepError> {
    let mut keys = Vec::new();
    let mut lists = Vec::new();
    for (k, v) in group {
        let key = format!("{prefix}.{k}");
        let items = list(&key, v)?;
        if let Some(first) = lists.first().map(|l: &&Vec<Value>| l.len())
            && first != items.len()
        {
            return Err(SweepError {
                key,
                message: format!(
                    "zip lists must have equal lengths: `{}` has {first}, this one has {}",
                    keys[0],
                    items.len()
                ),
            });
        }
        keys.push(k.clone());
        lists.push(items);
    }
    if keys.is_empty() {
        return Err(SweepError {
            key: prefix.to_owned(),
            message: "empty zip group: give at least one key with a list".into(),
        });
    }
    let values = (0..lists[0].len())
        .map(|i| lists.iter().map(|l| l[i].clone()).collect())
        .collect();
    Ok(Axis {
        keys,
        values,
        zipped: true,
    })
}

/// Parses the `sweep` mapping into axes, in file order.
pub fn axes(sweep: &Map<String, Value>) -> Result<Vec<Axis>, SweepError> {
    let mut out = Vec::new();
    for (key, v) in sweep {
        if key == "zip" {
            match v {
                Value::Object(group) => out.push(zip_group("zip", group)?),
                Value::Array(groups) if !groups.is_empty() => {
                    for (i, g) in groups.iter().enumerate() {
                        let Value::Object(group) = g else {
                            return Err(SweepError {
                                key: format!("zip[{i}]"),
                                message: "expected a mapping of keys to equal-length lists".into(),
                            });
                        };
                        out.push(zip_group("zip", group)?);
                    }
                }
                _ => {
                    return Err(SweepError {
                        key: "zip".into(),
                        message: "expected a mapping of keys to equal-length lists, or a list of such mappings".into(),
                    });
                }
            }
        } else {
            let values = list(key, v)?.iter().map(|x| vec![x.clone()]).collect();
            out.push(Axis {
                keys: vec![key.clone()],
                values,
                zipped: false,
            });
        }
    }
    Ok(out)
}

/// Number of points of the product (1 when there is no axis), `None` when it overflows `u64`.
pub fn point_count(axes: &[Axis]) -> Option<u64> {
    axes.iter()
        .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64))
}

/// The assignments `(dotted key, value)` of point `index` (first axis varies slowest).
pub fn point(axes: &[Axis], mut index: u64) -> Vec<(String, Value)> {
    let mut picks = vec![0usize; axes.len()];
    for (a, axis) in axes.iter().enumerate().rev() {
        let n = axis.values.len() as u64;
        picks[a] = (index % n) as usize;
        index /= n;
    }
    axes.iter()
        .zip(picks)
        .flat_map(|(axis, i)| {
            axis.keys
                .iter()
                .cloned()
                .zip(axis.values[i].iter().cloned())
        })
        .collect()
}

/// Sets dotted `path` in `params` to `value`, creating intermediate mappings as needed.
pub fn set_path(params: &mut Value, path: &str, value: Value) {
    let mut node = params;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        node = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Reads dotted `path` from `params`.
pub fn get_path<'a>(params: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(params, |node, part| node.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sweep(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn cartesian_product_first_axis_slowest() {
        let a = axes(&sweep(json!({"x": [1, 2], "y": ["a", "b", "c"]}))).unwrap();
        assert_eq!(point_count(&a), Some(6));
        assert_eq!(
            point(&a, 0),
            vec![("x".into(), json!(1)), ("y".into(), json!("a"))]
        );
        assert_eq!(
            point(&a, 4),
            vec![("x".into(), json!(2)), ("y".into(), json!("b"))]
        );
    }

    #[test]
    fn zip_lists_advance_together() {
        let a = axes(&sweep(
            json!({"zip": {"soc": ["p", "q"], "llm": ["m", "n"]}, "g": [1, 2, 3]}),
        ))
        .unwrap();
        assert_eq!(point_count(&a), Some(6));
        let p = point(&a, 3);
        assert_eq!(p[0], ("soc".into(), json!("q")));
        assert_eq!(p[1], ("llm".into(), json!("n")));
        assert_eq!(p[2], ("g".into(), json!(1)));
    }

    #[test]
    fn rejects_empty_and_ragged_lists() {
        assert_eq!(axes(&sweep(json!({"x": []}))).unwrap_err().key, "x");
        let e = axes(&sweep(json!({"zip": {"a": [1, 2], "b": [1]}}))).unwrap_err();
        assert_eq!(e.key, "zip.b");
        assert!(axes(&sweep(json!({"x": 3}))).is_err());
    }

    #[test]
    fn set_and_get_dotted_paths() {
        let mut p = json!({"a": {"b": 1}});
        set_path(&mut p, "a.c.d", json!(2));
        set_path(&mut p, "a.b", json!(3));
        assert_eq!(get_path(&p, "a.c.d"), Some(&json!(2)));
        assert_eq!(get_path(&p, "a.b"), Some(&json!(3)));
    }
}
