//! The report gallery in a headless browser: `reports/out/index.html` of a small report (the queue
//! paper's spec over a real `sysim plot` figure) opens in Chromium with every image decoded, and a
//! corrupt figure is caught. Chromium comes from Debian via `scripts/test-tools.sh`; without it the
//! test prints a note saying the check did not run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{assert_ok, root, stderr, sysim};

/// The Chromium binary on PATH, if any.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Opens `page` (a gallery) headless and returns `(images, broken image sources)`, read by a
/// script added to a copy of the page once everything has loaded.
fn check_images(browser: &Path, page: &Path) -> (usize, Vec<String>) {
    let html = std::fs::read_to_string(page).unwrap();
    let script = "<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);var bad=i.filter(function(x){return !(x.complete&&x.naturalWidth>0);}).map(function(x){return x.getAttribute('src');});document.body.setAttribute('data-check','images='+i.length+' broken='+bad.join('|')+';');});</script>";
    let checked = page.with_file_name("check.html");
    std::fs::write(
        &checked,
        html.replace("</body>", &format!("{script}</body>")),
    )
    .unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", checked.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let at = dom.find("data-check=\"images=").unwrap_or_else(|| {
        panic!(
            "the check script did not report (stderr: {})",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let rest = &dom[at + "data-check=\"images=".len()..];
    let (n, rest) = rest.split_once(" broken=").unwrap();
    let broken = rest.split_once(';').unwrap().0;
    (
        n.parse().unwrap(),
        broken
            .split('|')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn the_gallery_opens_in_a_headless_browser_without_broken_images() {
    let Some(browser) = chromium() else {
        eprintln!(
            "note: Chromium is not installed (scripts/test-tools.sh installs the Debian package); \
             the headless gallery check did NOT run"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // a real figure from a small run
    let run = tmp.path().join("q");
    assert_ok(&sysim(&[
        "run",
        "scenarios/quickstart.yaml",
        "--quiet",
        "--out",
        run.to_str().unwrap(),
        "--set",
        "replications=1",
        "--set",
        "params.customers=500",
        "--set",
        "params.warmup_customers=0",
    ]));
    let stem = tmp.path().join("fig");
    let plot = sysim(&[
        "plot",
        run.to_str().unwrap(),
        "--x",
        "arrival_rate",
        "--y",
        "mean_sojourn_s",
        "--series",
        "servers",
        "--out",
        stem.to_str().unwrap(),
    ]);
    assert!(plot.status.success(), "{}", stderr(&plot));
    // the queue paper's report folder with that figure under each of its figure ids
    let reports = tmp.path().join("reports");
    std::fs::create_dir_all(reports.join("out/queue")).unwrap();
    std::fs::copy(
        root().join("reports/queue.yaml"),
        reports.join("queue.yaml"),
    )
    .unwrap();
    let sections = analysis::gallery::sections(&reports).unwrap();
    assert_eq!(sections.len(), 1);
    let ids: Vec<String> = sections[0]
        .spec
        .figures
        .iter()
        .map(|f| f.id.clone())
        .collect();
    assert!(!ids.is_empty());
    for id in &ids {
        let dst = reports.join("out/queue").join(format!("{id}.png"));
        std::fs::copy(stem.with_extension("png"), dst).unwrap();
    }
    let page = analysis::gallery::write(&reports.join("out"), &sections).unwrap();
    let (images, broken) = check_images(&browser, &page);
    assert_eq!(images, ids.len(), "one image per figure");
    assert!(broken.is_empty(), "broken images: {broken:?}");
    // the check can fail: a corrupt figure is reported
    let corrupt = reports.join("out/queue").join(format!("{}.png", ids[0]));
    std::fs::write(&corrupt, b"not a png").unwrap();
    let (_, broken) = check_images(&browser, &page);
    assert_eq!(broken, [format!("queue/{}.png", ids[0])]);
}
