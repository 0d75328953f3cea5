//! A small reader of the CSV files users bring (request traces, device traces): a header row naming
//! the columns in any order, `#` comment lines and blank lines skipped, comma-separated fields.
//! Every error carries the line and column (both from 1) where it was found.

/// An error at (line, column), both from 1, with its message.
pub type At = (usize, usize, String);

/// One data row: its line and the fields of the named columns.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// Line of the row in the file, from 1.
    pub line: usize,
    /// Length of the raw line (the column just past it, minus one).
    len: usize,
    /// `(column where it starts, trimmed text)` of every field of the row.
    fields: Vec<(usize, &'a str)>,
    /// Field index of each asked column (`None`: an optional column absent from the header).
    index: Vec<Option<usize>>,
    /// The asked column names (required, then optional).
    names: Vec<&'a str>,
}

impl<'a> Row<'a> {
    /// `(column, text)` of asked column `k` (required first, then optional, in the order given to
    /// [`parse`]); `Ok(None)` for an optional column the header does not name.
    pub fn field(&self, k: usize) -> Result<Option<(usize, &'a str)>, At> {
        let Some(i) = self.index[k] else {
            return Ok(None);
        };
        self.fields.get(i).copied().map(Some).ok_or((
            self.line,
            self.len + 1,
            format!(
                "missing column `{}` (row has {} fields)",
                self.names[k],
                self.fields.len()
            ),
        ))
    }

    /// The column where asked column `k` starts on this row (1 when absent).
    pub fn column(&self, k: usize) -> usize {
        self.field(k).ok().flatten().map_or(1, |(c, _)| c)
    }

    /// Asked column `k` as a number; `Ok(None)` when it is an absent optional column.
    pub fn f64(&self, k: usize) -> Result<Option<f64>, At> {
        self.field(k)?
            .map(|(c, v)| {
                v.parse::<f64>().map_err(|_| {
                    (
                        self.line,
                        c,
                        format!("{}: `{v}` is not a number", self.names[k]),
                    )
                })
            })
            .transpose()
    }

    /// Asked column `k` as a whole number; `Ok(None)` when it is an absent optional column.
    pub fn u64(&self, k: usize, what: &str) -> Result<Option<u64>, At> {
        self.field(k)?
            .map(|(c, v)| {
                v.parse::<u64>().map_err(|_| {
                    (
                        self.line,
                        c,
                        format!("{}: `{v}` is not a whole number of {what}", self.names[k]),
                    )
                })
            })
            .transpose()
    }
}

/// The data rows of CSV `text` whose header names every column of `required` (and any of
/// `optional`); asked column `k` of a [`Row`] is `required[k]`, then `optional[k - required.len()]`.
pub fn parse<'a>(
    text: &'a str,
    required: &[&'a str],
    optional: &[&'a str],
) -> Result<Vec<Row<'a>>, At> {
    let names: Vec<&str> = required.iter().chain(optional).copied().collect();
    let mut index: Option<Vec<Option<usize>>> = None;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut fields = Vec::new();
        let mut start = 0;
        for f in raw.split(',') {
            fields.push((start + 1 + (f.len() - f.trim_start().len()), f.trim()));
            start += f.len() + 1;
        }
        let Some(ix) = &index else {
            let mut found = Vec::with_capacity(names.len());
            for (k, c) in names.iter().enumerate() {
                let at = fields.iter().position(|(_, f)| f == c);
                if at.is_none() && k < required.len() {
                    return Err((
                        line,
                        1,
                        format!("header must name the columns {required:?}; `{c}` is missing"),
                    ));
                }
                found.push(at);
            }
            if let Some((col, f)) = fields.iter().find(|(_, f)| !names.contains(f)) {
                return Err((
                    line,
                    *col,
                    format!("unknown column `{f}`; the columns are {names:?}"),
                ));
            }
            index = Some(found);
            continue;
        };
        out.push(Row {
            line,
            len: raw.len(),
            fields,
            index: ix.clone(),
            names: names.clone(),
        });
    }
    if index.is_none() {
        return Err((1, 1, format!("no header row naming {required:?}")));
    }
    if out.is_empty() {
        return Err((
            text.lines().count().max(1),
            1,
            "the file has no data rows".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_in_any_order_with_optional_ones() {
        let rows = parse("# c\nb, a\n1,2\n\n3,4\n", &["a"], &["b", "z"]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 5);
        assert_eq!(rows[0].f64(0).unwrap(), Some(2.0));
        assert_eq!(rows[0].f64(1).unwrap(), Some(1.0));
        assert_eq!(rows[0].f64(2).unwrap(), None);
        assert_eq!(rows[1].column(0), 3);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("a,b\n1\n", &["a", "b"], &[]).unwrap()[0]
            .field(1)
            .unwrap_err();
        assert_eq!((e.0, e.1), (2, 2), "{e:?}");
        let e = parse("a,b\n1, x\n", &["a", "b"], &[]).unwrap()[0]
            .u64(1, "tokens")
            .unwrap_err();
        assert_eq!((e.0, e.1), (2, 4), "{e:?}");
        let e = parse("a,c\n1,2\n", &["a"], &["b"]).unwrap_err();
        assert_eq!((e.0, e.1), (1, 3), "{e:?}");
        assert!(e.2.contains("unknown column `c`"), "{e:?}");
        assert!(
            parse("a\n", &["a"], &[])
                .unwrap_err()
                .2
                .contains("no data rows")
        );
        assert!(
            parse("b\n1\n", &["a"], &[])
                .unwrap_err()
                .2
                .contains("`a` is missing")
        );
    }
}
