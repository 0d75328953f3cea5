//! Real images for the learning studies: the UCI optical-recognition 8×8 handwritten digits
//! (Alpaydin & Kaynak 1998; 1,797 images of 10 classes, 64 pixel counts 0…16 each), as shipped in
//! the scikit-learn 1.5.2 wheel (`sklearn/datasets/data/digits.csv.gz`) and extracted, hash-checked,
//! by `scripts/fetch-data.sh` into `data/digits/digits.csv` (one image per row: 64 pixel values,
//! then the label).

use std::path::{Path, PathBuf};

use super::task::Dataset;

/// Environment variable naming the CSV (overrides `<repo>/data/digits/digits.csv`).
pub const DIGITS_ENV: &str = "SYSIM_DIGITS_CSV";

/// Pixels per image (8 × 8).
pub const PIXELS: usize = 64;

/// Images in the data set.
pub const IMAGES: usize = 1797;

/// Classes (the digits 0…9).
pub const CLASSES: usize = 10;

/// The largest pixel count in the data set (each pixel counts set bits in a 4×4 block of the
/// 32×32 original).
const MAX_PIXEL: f32 = 16.0;

/// The digits CSV: `$SYSIM_DIGITS_CSV` if set, else `<repo>/data/digits/digits.csv`; `None` unless
/// the file exists.
pub fn locate() -> Option<PathBuf> {
    let path = std::env::var_os(DIGITS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/digits.csv")
        });
    path.is_file().then_some(path)
}

/// Loads the digits CSV at `path`: pixels scaled to [0, 1], row-major 8 × 8, labels 0…9.
pub fn load(path: &Path) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses digits CSV text (64 pixel values 0…16 and a label 0…9 per row; blank lines ignored).
/// Errors name the 1-based line and column.
pub fn parse(text: &str) -> Result<Dataset, String> {
    let mut data = Dataset {
        dim: PIXELS,
        ..Dataset::default()
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != PIXELS + 1 {
            return Err(format!(
                "line {}: {} values, expected {} (64 pixels and the label)",
                i + 1,
                fields.len(),
                PIXELS + 1
            ));
        }
        for (col, f) in fields.iter().enumerate() {
            let v: f32 = f
                .trim()
                .parse()
                .map_err(|_| format!("line {} column {}: `{f}` is not a number", i + 1, col + 1))?;
            let max = if col == PIXELS {
                (CLASSES - 1) as f32
            } else {
                MAX_PIXEL
            };
            if !(0.0..=max).contains(&v) || v.fract() != 0.0 {
                return Err(format!(
                    "line {} column {}: {v} is not an integer in 0…{max}",
                    i + 1,
                    col + 1
                ));
            }
            if col == PIXELS {
                data.y.push(v as u32);
            } else {
                data.x.push(v / MAX_PIXEL);
            }
        }
    }
    if data.is_empty() {
        return Err("no images".into());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pixel: u32, label: u32) -> String {
        let mut v = vec![pixel.to_string(); PIXELS];
        v.push(label.to_string());
        v.join(",")
    }

    #[test]
    fn parses_rows_scaled_to_unit_range() {
        let d = parse(&format!("{}\n\n{}\n", row(16, 3), row(8, 9))).unwrap();
        assert_eq!((d.len(), d.dim), (2, PIXELS));
        assert_eq!(d.y, vec![3, 9]);
        assert_eq!(d.row(0)[0], 1.0);
        assert_eq!(d.row(1)[63], 0.5);
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let short = parse("1,2,3\n").unwrap_err();
        assert!(short.contains("line 1") && short.contains("65"), "{short}");
        let label = parse(&format!("{}\n{}\n", row(0, 1), row(0, 10))).unwrap_err();
        assert!(label.contains("line 2 column 65"), "{label}");
        let pixel = parse(&row(17, 1)).unwrap_err();
        assert!(pixel.contains("line 1 column 1"), "{pixel}");
        assert_eq!(parse("\n").unwrap_err(), "no images");
    }

    /// The fetched file (when present) is the full data set: 1,797 images, every class present
    /// 174…183 times (sklearn's DESCR).
    #[test]
    fn fetched_digits_have_the_documented_class_counts() {
        let Some(path) = locate() else {
            eprintln!("data/digits/digits.csv absent (run scripts/fetch-data.sh); check skipped");
            return;
        };
        let d = load(&path).unwrap();
        assert_eq!(d.len(), IMAGES);
        let mut counts = [0usize; CLASSES];
        for &y in &d.y {
            counts[y as usize] += 1;
        }
        assert!(counts.iter().all(|c| (174..=183).contains(c)), "{counts:?}");
    }
}
