//! Guards on input files before they are parsed: only regular files of bounded size are read
//! (a FIFO would block, `/dev/zero` would never end), YAML nesting is bounded (a deeply nested
//! document parses in quadratic time), numbers must be finite (`.nan`, `.inf`), and a scenario
//! name is a name, not a path.

use std::fs;
use std::io::Read;
use std::path::Path;

use serde_norway::Value;

use crate::error::InputError;
use crate::locate::locate;
use crate::scenario::io_reason;

/// Largest scenario or preset file read, bytes.
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// Deepest nesting of mappings and sequences accepted in a YAML file.
pub const MAX_YAML_DEPTH: usize = 64;

/// Longest scenario name, characters.
const MAX_NAME_CHARS: usize = 100;

/// Reads input file `path` (`what`: "scenario file", "preset file") as text: it must be a regular
/// file of at most [`MAX_INPUT_BYTES`] whose YAML nesting is at most [`MAX_YAML_DEPTH`].
pub fn read_yaml_file(path: &Path, what: &str) -> Result<String, InputError> {
    let fail = |reason: String| InputError::file(path, format!("cannot read {what}: {reason}"));
    let meta = fs::metadata(path).map_err(|e| fail(io_reason(&e)))?;
    if !meta.is_file() {
        return Err(fail("not a regular file (a folder, device or pipe)".into()));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(fail(format!(
            "{} bytes, more than the {} bytes a {what} may have",
            meta.len(),
            MAX_INPUT_BYTES
        )));
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(io_reason(&e)))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(fail(format!("more than {MAX_INPUT_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
    check_depth(path, &text)?;
    Ok(text)
}

/// Errors when `src` nests mappings and sequences deeper than [`MAX_YAML_DEPTH`] (block
/// indentation levels plus open flow brackets), naming the line.
pub fn check_depth(path: &Path, src: &str) -> Result<(), InputError> {
    let too_deep = |line: usize| InputError {
        file: path.to_path_buf(),
        position: Some((line + 1, 1)),
        key: None,
        message: format!("YAML nested deeper than {MAX_YAML_DEPTH} levels"),
    };
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (i, line) in src.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if flow == 0 {
            let indent = line.len() - trimmed.len();
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - - x` nests one sequence per dash on one line.
            let dashes = trimmed
                .split(' ')
                .take_while(|t| *t == "-")
                .count()
                .saturating_sub(1);
            for _ in 0..dashes {
                indents.push(indent);
            }
        }
        let mut quote: Option<char> = None;
        for c in trimmed.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if indents.len() + flow > MAX_YAML_DEPTH {
                        return Err(too_deep(i));
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        if indents.len() + flow > MAX_YAML_DEPTH {
            return Err(too_deep(i));
        }
    }
    Ok(())
}

/// Errors at the first number of `value` that is not finite (`.nan`, `.inf`), naming its key.
pub fn check_finite(path: &Path, src: &str, value: &Value) -> Result<(), InputError> {
    fn walk(value: &Value, key: &str) -> Option<(String, f64)> {
        match value {
            Value::Number(n) => n
                .as_f64()
                .filter(|x| !x.is_finite())
                .map(|x| (key.to_owned(), x)),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{key}[{i}]"))),
            Value::Mapping(map) => map.iter().find_map(|(k, v)| {
                let name = match k {
                    Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other)
                        .map(|s| s.trim().to_owned())
                        .unwrap_or_default(),
                };
                let child = if key.is_empty() {
                    name
                } else {
                    format!("{key}.{name}")
                };
                walk(v, &child)
            }),
            Value::Tagged(tagged) => walk(&tagged.value, key),
            _ => None,
        }
    }
    match walk(value, "") {
        None => Ok(()),
        Some((key, x)) => Err(InputError::key(
            path,
            locate(src, &key),
            key,
            format!("must be a finite number, got {x}"),
        )),
    }
}

/// Why `name` cannot be a scenario name (it names the output folder `out/<name>/`): it must be
/// 1–100 characters of letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn name_problem(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!valid).then(|| {
        format!(
            "`{name}` is not a name: use 1–{MAX_NAME_CHARS} letters, digits, `-`, `_` or `.`, not starting with `.` (it names the output folder)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_names_not_paths() {
        for good in ["quickstart", "fm-lora_2.b", "A1"] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "..",
            ".hidden",
            "a b",
            "x\\y",
            &"n".repeat(101),
        ] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn depth_counts_block_and_flow_nesting() {
        let p = Path::new("s.yaml");
        let deep_flow = format!("a: {}1{}\n", "[".repeat(70), "]".repeat(70));
        assert!(check_depth(p, &deep_flow).is_err());
        let mut deep_block = String::new();
        for i in 0..70 {
            deep_block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        let e = check_depth(p, &deep_block).unwrap_err();
        assert_eq!(e.position, Some((MAX_YAML_DEPTH + 1, 1)));
        let normal = "name: t\nparams:\n  a: [1, {b: 2}]\n  c:\n    d: \"[[[\"\n";
        check_depth(p, normal).unwrap();
    }

    #[test]
    fn non_finite_numbers_name_their_key() {
        let src = "params:\n  rate: .nan\n  list: [1, .inf]\n";
        let v: Value = serde_norway::from_str(src).unwrap();
        let e = check_finite(Path::new("s.yaml"), src, &v).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("params.rate"));
        assert_eq!(e.position, Some((2, 3)));
        assert!(e.message.contains("finite"), "{}", e.message);
    }

    #[test]
    fn only_regular_files_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read_yaml_file(tmp.path(), "scenario file").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        let e = read_yaml_file(Path::new("/dev/zero"), "preset file").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        let big = tmp.path().join("big.yaml");
        fs::write(&big, vec![b'#'; MAX_INPUT_BYTES as usize + 1]).unwrap();
        let e = read_yaml_file(&big, "scenario file").unwrap_err();
        assert!(e.message.contains("bytes"), "{}", e.message);
    }
}
