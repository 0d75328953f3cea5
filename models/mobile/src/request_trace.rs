//! A user's request trace: one request per row with its arrival time and lengths, as CSV (a header
//! naming the columns `arrival_s`, `prompt_tokens`, `output_tokens` in any order; `#` comments) or
//! JSONL (one object per line with those keys). Every error names the file, line and column.

use std::path::Path;

use serde::Deserialize;

/// One traced request.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
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

/// An error at (line, column), both from 1.
type At = (usize, usize, String);

/// Parses CSV text (see the module doc).
pub fn parse_csv(text: &str) -> Result<Vec<TraceRequest>, At> {
    let mut idx: Option<[usize; 3]> = None;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // fields with the column (from 1) where each starts
        let mut fields = Vec::new();
        let mut start = 0;
        for f in raw.split(',') {
            fields.push((start + 1 + (f.len() - f.trim_start().len()), f.trim()));
            start += f.len() + 1;
        }
        let Some(ix) = idx else {
            let mut found = [usize::MAX; 3];
            for (k, c) in COLUMNS.iter().enumerate() {
                found[k] = fields.iter().position(|(_, f)| f == c).ok_or((
                    line,
                    1,
                    format!("header must name the columns {COLUMNS:?}; `{c}` is missing"),
                ))?;
            }
            idx = Some(found);
            continue;
        };
        let get = |k: usize| {
            fields.get(ix[k]).copied().ok_or((
                line,
                raw.len() + 1,
                format!(
                    "missing column `{}` (row has {} fields)",
                    COLUMNS[k],
                    fields.len()
                ),
            ))
        };
        let (c0, a) = get(0)?;
        let arrival_s = a
            .parse::<f64>()
            .map_err(|_| (line, c0, format!("arrival_s: `{a}` is not a number")))?;
        let mut tokens = [0u64; 2];
        for (k, t) in tokens.iter_mut().enumerate() {
            let (c, v) = get(k + 1)?;
            *t = v.parse::<u64>().map_err(|_| {
                (
                    line,
                    c,
                    format!("{}: `{v}` is not a whole number of tokens", COLUMNS[k + 1]),
                )
            })?;
        }
        let r = TraceRequest {
            arrival_s,
            prompt_tokens: tokens[0],
            output_tokens: tokens[1],
        };
        check(&r, out.last()).map_err(|(k, m)| (line, fields[ix[k]].0, m))?;
        out.push(r);
    }
    if idx.is_none() {
        return Err((1, 1, format!("no header row naming {COLUMNS:?}")));
    }
    non_empty(out, text)
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
