//! `sysim run --trace DIR`: one Chrome/Perfetto trace-event file per run whose events agree with the
//! run's own metrics, a cap that says so when reached, and tables that tracing does not change.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use serde_json::Value;

use crate::common::{assert_ok, runs, stderr, sysim};

/// A parsed trace file with its track names resolved.
struct Timeline {
    doc: Value,
    /// `(pid, tid)` → track name (`server/0`).
    threads: HashMap<(u64, u64), String>,
    /// `pid` → process name (`server`).
    processes: HashMap<u64, String>,
}

impl Timeline {
    fn read(path: &Path) -> Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text).expect("the trace is JSON");
        let (mut threads, mut processes) = (HashMap::new(), HashMap::new());
        for e in doc["traceEvents"].as_array().expect("traceEvents") {
            let name = e["args"]["name"].as_str().map(str::to_owned);
            match (e["ph"].as_str(), e["name"].as_str(), name) {
                (Some("M"), Some("thread_name"), Some(n)) => {
                    threads.insert((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()), n);
                }
                (Some("M"), Some("process_name"), Some(n)) => {
                    processes.insert(e["pid"].as_u64().unwrap(), n);
                }
                _ => {}
            }
        }
        Self {
            doc,
            threads,
            processes,
        }
    }

    fn events(&self) -> &[Value] {
        self.doc["traceEvents"].as_array().unwrap()
    }

    fn track(&self, e: &Value) -> &str {
        let key = (
            e["pid"].as_u64().unwrap_or(0),
            e["tid"].as_u64().unwrap_or(0),
        );
        self.threads.get(&key).map_or("", String::as_str)
    }

    /// Slices (`ph: X`) on tracks starting with `prefix`, as (name, start s, duration s).
    fn slices(&self, prefix: &str) -> Vec<(String, f64, f64)> {
        self.events()
            .iter()
            .filter(|e| e["ph"] == "X" && self.track(e).starts_with(prefix))
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_owned(),
                    e["ts"].as_f64().unwrap() * 1e-6,
                    e["dur"].as_f64().unwrap() * 1e-6,
                )
            })
            .collect()
    }

    /// Summed slice duration on tracks starting with `prefix`, seconds.
    fn busy_s(&self, prefix: &str) -> f64 {
        self.slices(prefix).iter().map(|s| s.2).sum()
    }

    /// Values of counter `name` of process `process`, in file order.
    fn counter(&self, process: &str, name: &str) -> Vec<(f64, f64)> {
        self.events()
            .iter()
            .filter(|e| {
                e["ph"] == "C"
                    && e["name"] == name
                    && self
                        .processes
                        .get(&e["pid"].as_u64().unwrap())
                        .map(String::as_str)
                        == Some(process)
            })
            .map(|e| {
                (
                    e["ts"].as_f64().unwrap() * 1e-6,
                    e["args"]["value"].as_f64().unwrap(),
                )
            })
            .collect()
    }

    /// Instants (`ph: i`) on tracks starting with `prefix`, by name.
    fn instants(&self, prefix: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["ph"] == "i" && self.track(e).starts_with(prefix))
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Runs `scenario` with `sets` (one run expected) into a temporary folder with `--trace`, returning
/// its runs table and its one timeline.
fn traced(scenario: &str, sets: &[&str]) -> (DataFrame, Timeline) {
    let tmp = tempfile::tempdir().unwrap();
    let (out, traces) = (tmp.path().join("out"), tmp.path().join("traces"));
    let mut args = vec![
        "run",
        scenario,
        "--quiet",
        "--jobs",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--trace",
        traces.to_str().unwrap(),
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    assert_ok(&sysim(&args));
    let files: Vec<_> = std::fs::read_dir(&traces).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one run, one trace file");
    (runs(&out), Timeline::read(&traces.join("run-00000.json")))
}

fn metric(df: &DataFrame, name: &str) -> f64 {
    df.column(name)
        .unwrap_or_else(|_| panic!("metric {name}"))
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

const QUEUE: &[&str] = &[
    "sweep.servers=[2]",
    "sweep.arrival_rate=[0.6]",
    "replications=1",
    "params.customers=3000",
    "params.warmup_customers=300",
];

#[test]
fn queue_server_slices_add_up_to_the_reported_utilisation() {
    let (df, t) = traced("scenarios/quickstart.yaml", QUEUE);
    assert!(
        t.doc["otherData"]["title"]
            .as_str()
            .unwrap()
            .starts_with("queue run 0")
    );
    let jobs: Vec<_> = t
        .slices("server/")
        .into_iter()
        .filter(|s| s.0 == "job")
        .collect();
    assert_eq!(jobs.len() as f64, metric(&df, "customers_measured"));
    let span_s = metric(&df, "customers_measured") / metric(&df, "throughput_per_s");
    let busy_s: f64 = jobs.iter().map(|s| s.2).sum();
    let utilisation = busy_s / (span_s * 2.0);
    assert!(
        close(utilisation, metric(&df, "utilization"), 1e-9),
        "trace {utilisation} vs table {}",
        metric(&df, "utilization")
    );
    let mut servers: Vec<&str> = t.threads.values().map(String::as_str).collect();
    servers.sort_unstable();
    assert_eq!(servers, ["server/0", "server/1"]);
    // the run's series becomes a counter track
    assert!(!t.counter("server", "in_system").is_empty());
    assert!(t.doc["otherData"].get("sysim_note").is_none());
}

#[test]
fn tracing_does_not_change_the_tables_and_the_cap_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let mut args = vec!["run", "scenarios/quickstart.yaml", "--quiet", "--out"];
    args.push(plain.to_str().unwrap());
    for s in QUEUE {
        args.extend(["--set", s]);
    }
    assert_ok(&sysim(&args));
    let (capped, traces) = (tmp.path().join("capped"), tmp.path().join("traces"));
    let mut args = vec!["run", "scenarios/quickstart.yaml", "--quiet", "--out"];
    args.push(capped.to_str().unwrap());
    args.extend([
        "--trace",
        traces.to_str().unwrap(),
        "--trace-max-events",
        "100",
    ]);
    for s in QUEUE {
        args.extend(["--set", s]);
    }
    let out = sysim(&args);
    assert_ok(&out);
    assert!(
        runs(&plain).equals_missing(&runs(&capped)),
        "--trace changed runs.parquet"
    );
    assert!(
        stderr(&out).contains("trace cap reached"),
        "{}",
        stderr(&out)
    );
    let t = Timeline::read(&traces.join("run-00000.json"));
    let note = t.doc["otherData"]["sysim_note"]
        .as_str()
        .expect("a note in the file");
    assert!(note.contains("kept the first 100 events"), "{note}");
    let kept = t.events().iter().filter(|e| e["ph"] != "M").count();
    assert_eq!(kept, 101, "100 events and the note");
}

#[test]
fn phone_layers_run_on_the_processors_under_a_frequency_track() {
    let (df, t) = traced(
        "scenarios/mobile/tinyllama-gpu-example.yaml",
        &[
            "sweep.governor=[stock]",
            "replications=1",
            "params.workload.requests=2",
            "params.workload.fixed_lengths=[32, 8]",
        ],
    );
    let phases = t.slices("requests/");
    let requests = metric(&df, "requests");
    assert_eq!(
        phases.iter().filter(|s| s.0 == "prefill").count() as f64,
        requests
    );
    assert_eq!(
        phases.iter().filter(|s| s.0 == "decode").count() as f64,
        requests
    );
    assert!(t.slices("gpu/layers").iter().any(|s| s.0 == "decode L0"));
    assert!(t.busy_s("cpu/layers") > 0.0 && t.busy_s("mem/layers") > 0.0);
    for d in ["cpu", "gpu", "mem"] {
        let f = t.counter(d, "freq_mhz");
        assert_eq!(
            f.len() as f64,
            metric(&df, &format!("{d}_transitions")) + 1.0,
            "{d}"
        );
        assert!(!t.counter(d, "power_w").is_empty(), "{d} power");
    }
}

#[test]
fn supernode_compute_slices_are_the_reported_busy_time() {
    let (df, t) = traced(
        "scenarios/supernode/gantt-step.yaml",
        &["sweep.strategy=[hyperoffload]", "params.workload.steps=1"],
    );
    assert!(close(
        t.busy_s("device/compute"),
        metric(&df, "compute_busy_s"),
        1e-9
    ));
    assert!(!t.slices("fabric/h2d").is_empty());
    let used = t.counter("hbm", "used_bytes");
    let peak = used.iter().map(|u| u.1).fold(0.0, f64::max);
    assert_eq!(peak, metric(&df, "peak_device_bytes"));
}

#[test]
fn fpga_operator_slices_are_the_reported_operator_time() {
    let (df, t) = traced(
        "scenarios/fpga/e2e-speedup.yaml",
        &["sweep.workload=[bert-base]", "sweep.gpu=[jetson-nano]"],
    );
    let fpga_ms = metric(&df, "fpga_nonlinear_ms") + metric(&df, "fpga_matmul_ms");
    assert!(close(t.busy_s("fpga/") * 1e3, fpga_ms, 1e-9));
    assert!(
        t.slices("fpga/nonlinear")
            .iter()
            .any(|s| s.0.ends_with("softmax"))
    );
    let gpu_end_ms = t
        .slices("gpu/")
        .iter()
        .map(|s| s.1 + s.2)
        .fold(0.0, f64::max)
        * 1e3;
    assert!(close(gpu_end_ms, metric(&df, "gpu_e2e_ms"), 1e-9));
}

#[test]
fn moe_kernel_slices_are_the_reported_kernel_times() {
    let (df, t) = traced(
        "scenarios/sptc/kernel-tflops.yaml",
        &[
            "sweep.workload.kernel.m=[256]",
            "sweep.workload.kernel.n=[256]",
            "sweep.workload.kernel.k=[256]",
            "replications=1",
        ],
    );
    let methods: Vec<String> = t.processes.values().cloned().collect();
    assert!(methods.len() >= 2, "{methods:?}");
    for m in methods {
        let s = t.slices(&format!("{m}/gpu"));
        assert_eq!(s.len(), 1, "{m}: one kernel");
        assert!(
            close(s[0].2, metric(&df, &format!("{m}_time_s")), 1e-9),
            "{m}"
        );
    }
}

#[test]
fn fl_rounds_participants_and_chain_match_the_run() {
    let (df, t) = traced(
        "scenarios/fl/accuracy-rounds.yaml",
        &[
            "params.participants=12",
            "sweep.network.rounds=[3]",
            "sweep.data.partition=[iid]",
        ],
    );
    let rounds: Vec<_> = t
        .slices("fl/rounds")
        .into_iter()
        .filter(|s| s.0.starts_with("round "))
        .collect();
    assert_eq!(rounds.len(), 3);
    let mean_s = rounds.iter().map(|s| s.2).sum::<f64>() / 3.0;
    assert!(close(mean_s, metric(&df, "round_s_mean"), 1e-9));
    let trains = t
        .slices("fl/client ")
        .iter()
        .filter(|s| s.0 == "train")
        .count() as f64;
    assert!(trains >= metric(&df, "aggregated_updates"));
    let calls: f64 = [
        "new_job",
        "commit",
        "challenge",
        "counter",
        "reward_init",
        "reward_pay_multi",
    ]
    .iter()
    .map(|c| metric(&df, &format!("calls_{c}")))
    .sum();
    assert_eq!(t.instants("chain/transactions").len() as f64, calls);
    assert!(!t.counter("chain", "base_fee_gwei").is_empty());
    assert!(!t.slices("chain/blocks").is_empty());
}

/// Writes `text` to `name` in `dir`, returning its path as text.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn a_supernode_request_trace_is_served_in_order_and_bad_rows_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let reqs = write(
        tmp.path(),
        "reqs.csv",
        "# arrival, prompt, answer\narrival_s,prompt_tokens,output_tokens\n0,256,3\n0.0001,128,2\n5,512,1\n",
    );
    let scenario = write(
        tmp.path(),
        "s.yaml",
        &format!(
            "name: t\nfamily: supernode\nparams:\n  accel: ascend-910c\n  fabric: cloudmatrix384-ub\n  llm: llama-3.2-1b-q4\n  workload: {{ kind: request, prompt_tokens: 256, batch: 1, decode_steps: 2 }}\n  strategy: none\n  request_trace: {{ file: {reqs} }}\n"
        ),
    );
    let (df, t) = traced(&scenario, &[]);
    assert_eq!(metric(&df, "trace_requests"), 3.0);
    let served = t.slices("requests/device");
    assert_eq!(served.len(), 6, "a prefill and a decode slice per request");
    // first come, first served: each request starts after the previous one ended
    for w in served.windows(2) {
        assert!(w[1].1 >= w[0].1 + w[0].2 - 1e-12, "{w:?}");
    }
    // the second request arrived while the first was served: it queued
    assert!(metric(&df, "trace_queue_s_mean") > 0.0);
    let bad = write(
        tmp.path(),
        "bad.csv",
        "arrival_s,prompt_tokens,output_tokens\n0,256,3\n1,many,2\n",
    );
    let out = sysim(&[
        "run",
        &scenario,
        "--quiet",
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
        "--set",
        &format!("params.request_trace.file={bad}"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{bad}:3:3: prompt_tokens: `many` is not a whole number"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fl_participants_take_their_devices_from_a_trace_and_bad_rows_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let devices = write(
        tmp.path(),
        "devices.csv",
        "gflops,up_mbps,down_mbps,availability,dropout,latency_ms\n2,5,20,1,0,0\n8,20,100,1,0,0\n",
    );
    let sets = [
        "params.participants=4",
        "sweep.network.rounds=[1]",
        "sweep.data.partition=[iid]",
    ];
    let mut with_file: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
    with_file.push(format!("params.devices.trace_file={devices}"));
    let args: Vec<&str> = with_file.iter().map(String::as_str).collect();
    let (df, t) = traced("scenarios/fl/accuracy-rounds.yaml", &args);
    // availability 1 and no dropout: every participant trains in the round
    assert_eq!(metric(&df, "dropouts") + metric(&df, "offline"), 0.0);
    let trains: Vec<_> = t
        .slices("fl/client ")
        .into_iter()
        .filter(|s| s.0 == "train")
        .collect();
    assert_eq!(trains.len(), 4);
    // participants 0 and 2 take row 1 (20 Mbit/s down), 1 and 3 row 2 (100 Mbit/s): the same
    // model downloads 5× faster (no latency in this trace)
    let download = |c: usize| {
        t.slices(&format!("fl/client {c}"))
            .into_iter()
            .find(|s| s.0 == "download")
            .unwrap()
            .2
    };
    assert!(close(download(0), download(2), 1e-12));
    assert!(
        close(download(0), 5.0 * download(1), 1e-9),
        "{} vs {}",
        download(0),
        download(1)
    );
    let bad = write(
        tmp.path(),
        "bad.csv",
        "gflops,up_mbps,down_mbps\n2,5,20\n1,-3,4\n",
    );
    let mut args = vec![
        "run",
        "scenarios/fl/accuracy-rounds.yaml",
        "--quiet",
        "--out",
    ];
    let out_dir = tmp.path().join("bad");
    args.push(out_dir.to_str().unwrap());
    for s in sets {
        args.extend(["--set", s]);
    }
    let set_bad = format!("params.devices.trace_file={bad}");
    args.extend(["--set", &set_bad]);
    let out = sysim(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{bad}:3:3: up_mbps must be > 0")),
        "{}",
        stderr(&out)
    );
}
