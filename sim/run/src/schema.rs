//! JSON Schemas (draft 2020-12) for editors: a family's params as a scenario file may write them,
//! and the whole scenario file with one `if/then` branch per family.
//!
//! What the schemas check is what serde checks: keys (unknown ones are refused), types, the shape
//! of `sweep` and `zip:` groups. Range checks (`Validate`) and preset names stay with `sysim
//! validate`. Because a sweep may set any params key, no params key is required by the schema.

use serde_json::{Map, Value, json};
use sim::experiment::DynExperiment;

use crate::scenario::Registry;

/// The schema of `family`'s params as written in a scenario file: every preset slot also accepts a
/// string (a built-in preset name or a path to a `.yaml` file), and no key is required.
pub fn params_schema(family: &dyn DynExperiment) -> Value {
    let mut schema = family.schema();
    strip_required(&mut schema);
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for slot in family.presets() {
            if let Some(inline) = props.remove(slot.key) {
                let names: Vec<&str> = slot.builtin.iter().map(|(n, _)| *n).collect();
                let text = json!({
                    "type": "string",
                    "description": format!(
                        "a built-in preset ({}) or a path to a .yaml file, relative to the scenario",
                        names.join(", ")
                    ),
                });
                props.insert(slot.key.to_owned(), json!({ "anyOf": [text, inline] }));
            }
        }
    }
    schema
}

/// The schema of a whole scenario file for every family of `registry`.
pub fn scenario_schema(registry: &Registry) -> Value {
    let names: Vec<&str> = registry.families().map(|f| f.name()).collect();
    let mut defs = Map::new();
    let mut branches = Vec::new();
    for family in registry.families() {
        let mut params = params_schema(family);
        let name = family.name();
        if let Some(Value::Object(family_defs)) =
            params.as_object_mut().and_then(|o| o.remove("$defs"))
        {
            for (k, mut v) in family_defs {
                rewrite_refs(&mut v, name);
                defs.insert(format!("{name}.{k}"), v);
            }
        }
        if let Some(o) = params.as_object_mut() {
            o.remove("$schema");
        }
        rewrite_refs(&mut params, name);
        defs.insert(format!("{name}.params"), params);
        for key in ["family", "model"] {
            branches.push(json!({
                "if": { "properties": { key: { "const": name } }, "required": [key] },
                "then": { "properties": { "params": { "$ref": format!("#/$defs/{name}.params") } } },
            }));
        }
    }
    let list = json!({ "type": "array", "minItems": 1 });
    let zip_group = json!({ "type": "object", "minProperties": 1, "additionalProperties": list });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://sysim.invalid/scenario.schema.json",
        "title": "sysim scenario file",
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "oneOf": [ { "required": ["family"] }, { "required": ["model"] } ],
        "properties": {
            "name": { "type": "string", "description": "Output folder name (out/<name>/)." },
            "family": { "enum": names, "description": "The family (sysim list)." },
            "model": { "enum": names, "description": "Older spelling of `family`." },
            "description": { "type": "string" },
            "seed": { "type": "integer", "minimum": 0 },
            "replications": { "type": "integer", "minimum": 1 },
            "common_random_numbers": { "type": "boolean" },
            "params": { "type": "object" },
            "sweep": {
                "type": "object",
                "description": "Dotted params keys → lists of values (cartesian product); `zip:` groups advance together.",
                "properties": { "zip": { "anyOf": [zip_group, { "type": "array", "minItems": 1, "items": zip_group }] } },
                "additionalProperties": list,
            },
        },
        "allOf": branches,
        "$defs": defs,
    })
}

/// Removes every `required` list (a sweep may supply any key).
fn strip_required(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("required").is_some_and(Value::is_array) {
                map.remove("required");
            }
            map.values_mut().for_each(strip_required);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_required),
        _ => {}
    }
}

/// Points `#/$defs/X` references at `#/$defs/<family>.X`.
fn rewrite_refs(v: &mut Value, family: &str) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
                && !name.starts_with(&format!("{family}."))
            {
                *r = format!("#/$defs/{family}.{name}");
            }
            map.values_mut().for_each(|c| rewrite_refs(c, family));
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rewrite_refs(c, family)),
        _ => {}
    }
}
