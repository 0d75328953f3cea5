//! A user's request trace (the `mobile` and `supernode` families): one request per row with its
//! arrival time and lengths, as CSV (a header naming the columns `arrival_s`, `prompt_tokens`,
//! `output_tokens` in any order; `#` comments; see [`crate::table_csv`]) or JSONL (one object per
//! line with those keys). Every error names the file, line and column.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::table_csv::{self, At};

/// One traced request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// Arrival time from the start of the trace, seconds (non-decreasing down the file).
    pub arrival_s: f64,
    /// Prompt length, tokens (≥ 1).
    pub prompt_tokens: u64,
    /// Answer length, tokens (≥ 1).
    pub output_tokens: u64,
}

const COLUMNS: [&str; 3] = ["arrival_s", "prompt_tokens", "output_tokens"];

/// Reads and checks the trace at `path` (`.jsonl` / `.json`: JSON lines; anything else: CSV).
pub fn load(path: &Path) -> Result<Vec<TraceRequest>, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let jsonl = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "json")
    );
    let rows = if jsonl {
        parse_jsonl(&text)
    } else {
        parse_csv(&text)
    };
    rows.map_err(|(line, col, msg)| format!("{name}:{line}:{col}: {msg}"))
}

/// Parses CSV text (see the module doc).
pub fn parse_csv(text: &str) -> Result<Vec<TraceRequest>, At> {
    let mut out = Vec::new();
    for row in table_csv::parse(text, &COLUMNS, &[])? {
        let r = TraceRequest {
            arrival_s: row.f64(0)?.unwrap_or_default(),
            prompt_tokens: row.u64(1, "tokens")?.unwrap_or_default(),
            output_tokens: row.u64(2, "tokens")?.unwrap_or_default(),
        };
        check(&r, out.last()).map_err(|(k, m)| (row.line, row.column(k), m))?;
        out.push(r);
    }
    Ok(out)
}

/// Parses JSON-lines text (see the module doc).
pub fn parse_jsonl(text: &str) -> Result<Vec<TraceRequest>, At> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let r: TraceRequest =
            serde_json::from_str(raw).map_err(|e| (i + 1, e.column().max(1), e.to_string()))?;
        check(&r, out.last()).map_err(|(k, m)| {
            let col = raw
                .find(&format!("\"{}\"", COLUMNS[k]))
                .map_or(1, |c| c + 1);
            (i + 1, col, m)
        })?;
        out.push(r);
    }
    non_empty(out, text)
}

fn non_empty(out: Vec<TraceRequest>, text: &str) -> Result<Vec<TraceRequest>, At> {
    if out.is_empty() {
        return Err((
            text.lines().count().max(1),
            1,
            "the trace has no requests".into(),
        ));
    }
    Ok(out)
}

/// Checks one row against the previous; on failure the offending column's index and a message.
fn check(r: &TraceRequest, prev: Option<&TraceRequest>) -> Result<(), (usize, String)> {
    if !(r.arrival_s.is_finite() && r.arrival_s >= 0.0) {
        return Err((0, format!("arrival_s must be ≥ 0 s, got {}", r.arrival_s)));
    }
    if let Some(p) = prev
        && r.arrival_s < p.arrival_s
    {
        return Err((
            0,
            format!(
                "arrival_s must not decrease: {} s after {} s",
                r.arrival_s, p.arrival_s
            ),
        ));
    }
    if r.prompt_tokens == 0 {
        return Err((1, "prompt_tokens must be ≥ 1".into()));
    }
    if r.output_tokens == 0 {
        return Err((2, "output_tokens must be ≥ 1".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_columns_in_any_order() {
        let t = "# my trace\noutput_tokens,arrival_s,prompt_tokens\n10, 0.5,3\n4,1.0,7\n";
        let r = parse_csv(t).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            TraceRequest {
                arrival_s: 1.0,
                prompt_tokens: 7,
                output_tokens: 4
            }
        );
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let e = parse_csv("arrival_s,prompt_tokens,output_tokens\n0,5,5\n1,x,5\n").unwrap_err();
        assert_eq!((e.0, e.1), (3, 3), "{e:?}");
        let e = parse_csv("arrival_s,prompt_tokens,output_tokens\n2,5,5\n1,5,5\n").unwrap_err();
        assert_eq!((e.0, e.1), (3, 1), "{e:?}");
        assert!(e.2.contains("must not decrease"));
        let e = parse_csv("arrival_s,prompt_tokens,output_tokens\n0,5,0\n").unwrap_err();
        assert_eq!((e.0, e.1), (2, 5), "{e:?}");
        let e = parse_csv("arrival_s,prompt\n").unwrap_err();
        assert!(e.2.contains("prompt_tokens"), "{e:?}");
    }

    #[test]
    fn jsonl_rows_and_errors() {
        let ok = "{\"arrival_s\":0,\"prompt_tokens\":3,\"output_tokens\":2}\n\n{\"arrival_s\":1.5,\"prompt_tokens\":9,\"output_tokens\":1}\n";
        assert_eq!(parse_jsonl(ok).unwrap().len(), 2);
        let bad = "{\"arrival_s\":0,\"prompt_tokens\":3,\"output_tokens\":2}\n{\"arrival_s\":1,\"prompt_tokens\":-3,\"output_tokens\":2}\n";
        let e = parse_jsonl(bad).unwrap_err();
        assert_eq!(e.0, 2, "{e:?}");
        assert!(e.1 > 1, "{e:?}");
        let e =
            parse_jsonl("{\"arrival_s\":0,\"prompt_tokens\":0,\"output_tokens\":2}").unwrap_err();
        assert_eq!((e.0, e.1), (1, 16), "{e:?}");
    }

    #[test]
    fn load_prefixes_the_file_name() {
        let e = load(Path::new("/nonexistent/trace.csv")).unwrap_err();
        assert!(e.starts_with("/nonexistent/trace.csv: cannot read"), "{e}");
    }
}
