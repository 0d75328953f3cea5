//! The report gallery: one `index.html` over every paper's figures (with captions) and claims,
//! with relative links only, so that a browser opens it offline from the folder it sits in.
//!
//! The page is well-formed XML (XHTML syntax in an HTML5 document), so any XML parser can check it.
//! Claim rows are read as JSON objects, so the gallery shows whatever fields `claims.json` carries
//! (kind and interval when present) without depending on their Rust type.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sim_run::error::InputError;
use sim_run::scenario::{io_reason, parse_yaml};

use crate::error::{AnalysisError, Result};
use crate::report::ReportSpec;

/// One paper's section of the gallery.
#[derive(Debug, Clone)]
pub struct PaperSection {
    /// The paper's report spec (id, title, source, figures with captions, notes).
    pub spec: ReportSpec,
    /// The rows of its `claims.json`, as written.
    pub claims: Vec<Value>,
}

/// Reads every `<reports>/*.yaml` whose output folder `<reports>/out/<paper>/` exists, with its
/// claims, in file-name order. A spec that does not parse is an error naming the file.
pub fn sections(reports: &Path) -> std::result::Result<Vec<PaperSection>, InputError> {
    let mut files: Vec<PathBuf> = fs::read_dir(reports)
        .map_err(|e| {
            InputError::file(
                reports,
                format!("cannot list report files: {}", io_reason(&e)),
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let src = fs::read_to_string(&file).map_err(|e| {
            InputError::file(&file, format!("cannot read report: {}", io_reason(&e)))
        })?;
        let spec: ReportSpec = parse_yaml(&file, &src)?;
        let folder = reports.join("out").join(&spec.paper);
        if !folder.is_dir() {
            continue;
        }
        let claims = fs::read(folder.join("claims.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Vec<Value>>(&bytes).ok())
            .unwrap_or_default();
        out.push(PaperSection { spec, claims });
    }
    Ok(out)
}

/// Writes `<out>/index.html` over `sections` (figures are looked up as `<out>/<paper>/<id>.png`;
/// a missing one is shown as a note, never as a broken image). Returns the page's path.
pub fn write(out: &Path, sections: &[PaperSection]) -> Result<PathBuf> {
    let page = html(out, sections);
    let path = out.join("index.html");
    sim_run::table::write_bytes_atomic(&path, page.as_bytes())
        .map_err(|e| AnalysisError::io(&path, e))?;
    Ok(path)
}

/// The gallery page; `out` is the folder it will sit in (to check which figures exist).
fn html(out: &Path, sections: &[PaperSection]) -> String {
    let mut h = String::new();
    h.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n",
        "<title>sysim reports</title>\n<style>\n",
        "body{font-family:sans-serif;max-width:70em;margin:auto;padding:1em;color:#222}\n",
        "figure{display:inline-block;width:46%;margin:1%;vertical-align:top}\n",
        "figure img{width:100%;border:1px solid #ddd}\n",
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:.3em}\n",
        ".in{background:#e6f4ea}.out{background:#fde7e7}.none{background:#eee}\n",
        "</style>\n</head>\n<body>\n<h1>sysim reports</h1>\n<ul>\n"
    ));
    for s in sections {
        let _ = writeln!(
            h,
            "<li><a href=\"#{id}\">{id}</a>: {title}</li>",
            id = esc(&s.spec.paper),
            title = esc(&s.spec.title)
        );
    }
    h.push_str("</ul>\n");
    for s in sections {
        section(&mut h, out, s);
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn section(h: &mut String, out: &Path, s: &PaperSection) {
    let spec = &s.spec;
    let _ = writeln!(
        h,
        "<h2 id=\"{}\">{}</h2>\n<p>{}</p>",
        esc(&spec.paper),
        esc(&spec.title),
        esc(&spec.source)
    );
    for fig in &spec.figures {
        let png = format!("{}/{}.png", spec.paper, fig.id);
        let caption = if fig.caption.is_empty() {
            &fig.id
        } else {
            &fig.caption
        };
        if out.join(&png).is_file() {
            let _ = writeln!(
                h,
                "<figure><a href=\"{svg}\"><img src=\"{png}\" alt=\"{alt}\" /></a><figcaption><b>{id}</b>: {caption}</figcaption></figure>",
                svg = esc(&format!("{}/{}.svg", spec.paper, fig.id)),
                png = esc(&png),
                alt = esc(caption),
                id = esc(&fig.id),
                caption = esc(caption)
            );
        } else {
            let _ = writeln!(
                h,
                "<p class=\"none\">Figure <b>{}</b> was not drawn (see the warnings of <code>sysim report {}</code>).</p>",
                esc(&fig.id),
                esc(&spec.paper)
            );
        }
    }
    if !s.claims.is_empty() {
        h.push_str("<table>\n<tr><th>claim</th><th>kind</th><th>paper</th><th>band</th><th>simulated</th><th>status</th></tr>\n");
        for c in &s.claims {
            claim_row(h, c);
        }
        h.push_str("</table>\n");
    }
    if !spec.notes.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&spec.notes));
    }
}

fn claim_row(h: &mut String, c: &Value) {
    let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
    let unit = text("unit");
    let band = match c.get("band") {
        Some(Value::Array(b)) if b.len() == 2 => format!("{} – {} {unit}", b[0], b[1]),
        _ => String::new(),
    };
    let simulated = match c.get("simulated").and_then(Value::as_f64) {
        Some(v) => format!("{} {unit}", (v * 1e4).round() / 1e4),
        None => "—".to_owned(),
    };
    let (class, status) = match (c.get("in_band").and_then(Value::as_bool), text("problem")) {
        (_, problem) if !problem.is_empty() => ("none", problem.to_owned()),
        (Some(true), _) => ("in", "inside the band".to_owned()),
        _ => ("out", "outside the band".to_owned()),
    };
    let _ = writeln!(
        h,
        "<tr class=\"{class}\"><td><b>{}</b>: {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(text("id")),
        esc(text("text")),
        esc(text("kind")),
        esc(text("paper_value")),
        esc(&band),
        esc(&simulated),
        esc(&status)
    );
}

/// `text` escaped for HTML/XML text and attribute values.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ReportSpec {
        serde_norway::from_str(yaml).unwrap()
    }

    /// Every `src` and `href` of the page: relative, and (but for anchors) an existing file.
    fn check_links(out: &Path, page: &str) -> Vec<String> {
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(page, options)
            .expect("the gallery is well-formed XML");
        let mut images = Vec::new();
        for node in doc.descendants().filter(|n| n.is_element()) {
            for attr in ["src", "href"] {
                let Some(link) = node.attribute(attr) else {
                    continue;
                };
                if link.starts_with('#') {
                    continue;
                }
                assert!(!link.contains("://") && !link.starts_with('/'), "{link}");
                assert!(out.join(link).is_file(), "broken link {link}");
                if node.tag_name().name() == "img" {
                    images.push(link.to_owned());
                }
            }
        }
        images
    }

    #[test]
    fn figures_captions_and_claims_with_relative_links_to_existing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        fs::create_dir_all(out.join("p")).unwrap();
        for f in ["p/a.png", "p/a.svg"] {
            fs::write(out.join(f), b"x").unwrap();
        }
        let s = spec(
            "paper: p\ntitle: \"A & B <2025>\"\nfigures:\n  - {id: a, scenario: s.yaml, kind: bar, x: g, y: v, caption: \"rate < 1 & \\\"ok\\\"\"}\n  - {id: b, scenario: s.yaml, kind: bar, x: g, y: v}\n",
        );
        let claims = vec![
            serde_json::json!({"id": "c1", "text": "faster", "paper_value": "2×", "band": [1.5, 3.0], "simulated": 2.2, "unit": "x", "in_band": true, "problem": null, "kind": "evidence"}),
            serde_json::json!({"id": "c2", "text": "x", "paper_value": "1", "band": [0, 1], "simulated": null, "unit": "", "in_band": false, "problem": "no rows"}),
        ];
        let page = html(out, &[PaperSection { spec: s, claims }]);
        assert_eq!(check_links(out, &page), ["p/a.png"]);
        assert!(page.contains("rate &lt; 1 &amp; &quot;ok&quot;"), "{page}");
        assert!(page.contains("Figure <b>b</b> was not drawn"));
        assert!(page.contains("<td>evidence</td>") && page.contains("inside the band"));
        assert!(page.contains("no rows"));
        let path = write(out, &[]).unwrap();
        check_links(out, &fs::read_to_string(path).unwrap());
    }

    #[test]
    fn sections_are_the_papers_with_an_output_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("a.yaml"), "paper: a\ntitle: A\n").unwrap();
        fs::write(dir.join("b.yaml"), "paper: b\ntitle: B\n").unwrap();
        fs::create_dir_all(dir.join("out/b")).unwrap();
        fs::write(dir.join("out/b/claims.json"), "[{\"id\": \"c\"}]").unwrap();
        let found = sections(dir).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].spec.paper, "b");
        assert_eq!(found[0].claims.len(), 1);
    }
}
