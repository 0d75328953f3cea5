//! Finds where a dotted key (e.g. `params.workload.requests`) sits in YAML source text, so that
//! errors found after parsing (type and range checks on resolved params) still name line:column.
//!
//! This is a text scan of block mappings (indentation) with a fallback for flow mappings on one
//! line (`workload: { requests: 200 }`); it never fails, it only returns `None` when it cannot tell.

/// 1-based (line, column) of the last component of `path` in `src`, or of the deepest prefix found.
pub fn locate(src: &str, path: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = src.lines().collect();
    let mut found: Option<(usize, usize)> = None;
    // Search window: lines [start, end) and the minimum indentation a child key must have.
    let (mut start, mut end, mut min_indent) = (0usize, lines.len(), 0usize);
    for component in path.split('.').filter(|c| !c.is_empty()) {
        let component = component.split('[').next().unwrap_or(component);
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().take(end).skip(start) {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if indent < min_indent && i > start {
                break;
            }
            if let Some(col) = key_column(line, component) {
                hit = Some((i, col, indent));
                break;
            }
        }
        let Some((i, col, indent)) = hit else {
            return found;
        };
        found = Some((i + 1, col + 1));
        // Children live on later lines indented deeper, or on the same line in flow style.
        let block_end = (i + 1..lines.len())
            .find(|&j| {
                let l = lines[j];
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with('#') && l.len() - t.len() <= indent
            })
            .unwrap_or(lines.len());
        start = i;
        end = block_end;
        min_indent = indent + 1;
    }
    found
}

/// Column (0-based) of `key:` in `line` when it appears as a mapping key.
fn key_column(line: &str, key: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(off) = line[from..].find(key) {
        let at = from + off;
        let before_ok =
            at == 0 || matches!(bytes[at - 1], b' ' | b'{' | b',' | b'-' | b'"' | b'\'');
        let rest = line[at + key.len()..].trim_start_matches(['"', '\'']);
        if before_ok && rest.trim_start().starts_with(':') {
            let quoted = at > 0 && matches!(bytes[at - 1], b'"' | b'\'');
            return Some(if quoted { at - 1 } else { at });
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate;

    const SRC: &str = "name: q\nfamily: queue\nparams:\n  arrival_rate: 0.5\n  workload: { trace: x, requests: 3 }\n  nested:\n    deep: 1\nsweep:\n  arrival_rate: [0.1, 0.2]\n";

    #[test]
    fn finds_block_keys() {
        assert_eq!(locate(SRC, "family"), Some((2, 1)));
        assert_eq!(locate(SRC, "params.arrival_rate"), Some((4, 3)));
        assert_eq!(locate(SRC, "params.nested.deep"), Some((7, 5)));
        assert_eq!(locate(SRC, "sweep.arrival_rate"), Some((9, 3)));
    }

    #[test]
    fn finds_flow_keys_on_the_parent_line() {
        assert_eq!(locate(SRC, "params.workload.requests"), Some((5, 25)));
    }

    #[test]
    fn falls_back_to_the_deepest_prefix() {
        assert_eq!(locate(SRC, "params.nested.missing"), Some((6, 3)));
        assert_eq!(locate(SRC, "nothing"), None);
    }
}
