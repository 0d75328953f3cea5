//! Family-level checks: energy accounting, FUSE's search against brute-force simulation, the
//! paper's direction of effect, validation and determinism.

use sim::experiment::{Experiment, RunContext};
use sim::validate::Checks;

use super::MobileExperiment;
use super::cost::{CostModel, EngineParams, Phase};
use super::dash::DashParams;
use super::experiment::{Policy, simulate};
use super::fuse::{self, FuseParams, Profile};
use super::params::{ArrivalKind, GovernorChoice, MobileParams, StockParams, WorkloadParams};
use super::workload::Arrivals;
use presets::{LLM, SOC};

fn preset<T: serde::de::DeserializeOwned>(table: &[(&str, &str)], name: &str) -> T {
    serde_norway::from_str(table.iter().find(|(n, _)| *n == name).unwrap().1).unwrap()
}

fn params(governor: GovernorChoice, prompt: u64, response: u64, requests: u64) -> MobileParams {
    MobileParams {
        soc: preset(SOC, "pixel-7"),
        llm: preset(LLM, "tinyllama-1.1b-q4"),
        governor,
        workload: WorkloadParams {
            arrivals: ArrivalKind::Closed,
            requests,
            think_s: 0.5,
            rate_per_s: 0.1,
            max_response_tokens: 512,
            fixed_lengths: Some([prompt, response]),
            trace_file: None,
        },
        engine: EngineParams::default(),
        stock: StockParams::default(),
        fuse: FuseParams {
            decode_profile_tokens: 32,
            decode_profile_stride: 16,
            ..FuseParams::default()
        },
        dash: DashParams::default(),
        series_interval_s: 0.05,
    }
}

#[test]
fn energy_is_non_negative_and_the_sum_over_domains_and_phases() {
    let p = params(GovernorChoice::Stock, 40, 12, 2);
    let cost = CostModel::new(p.soc.clone(), p.llm.clone(), p.engine.clone());
    let r = simulate(
        &cost,
        &Policy::Stock(p.stock.clone()),
        Arrivals::Closed { think_s: 0.3 },
        vec![(40, 12), (80, 6)],
        RunContext::single(17).rng("t"),
        0.01,
    )
    .unwrap();
    assert_eq!(r.done.len(), 2);
    let by_source: f64 = r.meter.sources.iter().map(|s| s.energy_j).sum();
    assert!(r.meter.sources.iter().all(|s| s.energy_j >= 0.0));
    assert!((by_source - r.meter.total_j).abs() < 1e-9);
    // the domains' own integrals agree with the meter
    for s in &r.domains {
        assert!((s.energy_j - r.meter.energy_j(s.domain)).abs() < 1e-9 * r.meter.total_j.max(1.0));
    }
    // the monitor's phase attribution covers the whole run
    let phases: f64 = r
        .monitor
        .requests
        .iter()
        .map(|e| e.prefill_j + e.decode_j)
        .sum::<f64>()
        + r.monitor.idle_j;
    assert!(
        (phases - r.meter.total_j).abs() < 1e-6 * r.meter.total_j,
        "{phases} vs {}",
        r.meter.total_j
    );
    assert!((r.monitor.total_j - r.meter.total_j).abs() < 1e-6 * r.meter.total_j);
    assert!(!r.monitor.series.is_empty());
}

#[test]
fn eas_places_a_blocking_host_off_the_x1_and_its_cluster_energy_is_counted() {
    let run = |spin: bool| {
        let mut p = params(GovernorChoice::Stock, 40, 24, 2);
        p.engine.host_spin_wait = spin;
        let cost = CostModel::new(p.soc.clone(), p.llm.clone(), p.engine.clone());
        simulate(
            &cost,
            &Policy::Stock(p.stock.clone()),
            Arrivals::Closed { think_s: 0.3 },
            vec![(40, 24), (40, 24)],
            RunContext::single(5).rng("t"),
            0.0,
        )
        .unwrap()
    };
    // spinning: ≈ 100 % utilisation fits no smaller cluster, so the host stays on the X1 (CL2)
    let spin = run(true);
    let h = spin.host.clone().unwrap();
    assert_eq!(h.migrations, 0);
    assert_eq!(h.running_s[0] + h.running_s[1], 0.0);
    // blocking: the host's utilisation fits the A78 cluster (CL1), which costs least per unit
    let block = run(false);
    let h = block.host.clone().unwrap();
    let total: f64 = h.running_s.iter().sum();
    assert!(h.running_s[1] > 0.5 * total, "{h:?}");
    let cl1 = block
        .meter
        .sources
        .iter()
        .find(|s| s.name == "cpu_cl1")
        .unwrap();
    assert!(cl1.energy_j > 0.0);
    // the monitor's phase attribution covers every source, the clusters included
    let phases: f64 = block
        .monitor
        .requests
        .iter()
        .map(|e| e.prefill_j + e.decode_j)
        .sum::<f64>()
        + block.monitor.idle_j;
    assert!((phases - block.meter.total_j).abs() < 1e-6 * block.meter.total_j);
}

#[test]
fn fuse_search_finds_the_triple_brute_force_simulation_finds() {
    let p = params(GovernorChoice::Stock, 32, 9, 1);
    let cost = CostModel::new(p.soc.clone(), p.llm.clone(), p.engine.clone());
    let grid: Vec<[usize; 3]> = [0, 17]
        .iter()
        .flat_map(|&c| {
            [0, 10]
                .iter()
                .flat_map(move |&g| [0, 12].iter().map(move |&m| [c, g, m]))
        })
        .collect();
    // brute force: one full simulation per pinned triple, TPOT and decode energy per token measured
    let measured: Vec<Profile> = grid
        .iter()
        .map(|&t| {
            let pol = Policy::Pinned {
                bounds: vec![],
                table: vec![[t, t]],
            };
            let r = simulate(
                &cost,
                &pol,
                Arrivals::Closed { think_s: 0.0 },
                vec![(32, 9)],
                RunContext::single(17).rng("t"),
                0.0,
            )
            .unwrap();
            let d = r.done[0];
            Profile {
                triple: t,
                latency_s: (d.end_s - d.first_token_s) / 8.0,
                energy_per_token_j: r.monitor.requests[0].decode_j / 8.0,
            }
        })
        .collect();
    let fp = FuseParams {
        decode_profile_tokens: 8,
        decode_profile_stride: 1,
        ..FuseParams::default()
    };
    let mut energies: Vec<f64> = measured.iter().map(|m| m.energy_per_token_j).collect();
    energies.sort_by(f64::total_cmp);
    for budget in [f64::INFINITY, energies[4], energies[1]] {
        let (chosen, n) = fuse::search(&cost, &fp, Phase::Decode, &[32], budget, &grid);
        assert_eq!(n, 8);
        let want = fuse::choose(&measured, budget).unwrap();
        assert_eq!(chosen.unwrap().triple, want.triple, "budget {budget}");
    }
}

#[test]
fn gs201_memory_governor_follows_its_target_load_and_the_gpu_floor() {
    let run = |p: &MobileParams| MobileExperiment.run(p, &RunContext::single(3)).unwrap();
    let stock = params(GovernorChoice::Stock, 64, 40, 2);
    assert!(stock.soc.mem.interactive.is_some());
    // decode streams the weights: the bus load is far above the 4 % target, the clock climbs
    let busy = run(&stock).get("mem_freq_mhz_mean").unwrap();
    // a target of 100 % (1000 per mille) asks for less than the load: the clock stays lower
    let mut lazy = stock.clone();
    if let Some(a) = lazy.soc.mem.interactive.as_mut() {
        a.target_load = 1000.0;
        a.hispeed_load = 1000.0;
    }
    let slow = run(&lazy).get("mem_freq_mhz_mean").unwrap();
    assert!(busy > 2000.0 && slow < busy, "{busy} vs {slow}");
    // the GPU table's floor: with the GPU pinned high by quickstep's table forced to its top
    // level, the memory clock never drops below 845 MHz while the lazy governor would idle lower
    let mut floored = lazy.clone();
    if let Some(q) = floored.soc.gpu.quickstep.as_mut() {
        q.down_util_pct = vec![0.0; q.down_util_pct.len()];
        q.up_util_pct = vec![0.0; q.up_util_pct.len()];
    }
    let f = run(&floored).get("mem_freq_mhz_mean").unwrap();
    assert!(f > slow && f >= 845.0 * 0.9, "{f} vs {slow}");
}

#[test]
fn fuse_is_faster_than_stock_at_no_more_energy_per_token() {
    let stock = MobileExperiment
        .run(
            &params(GovernorChoice::Stock, 96, 33, 2),
            &RunContext::single(17),
        )
        .unwrap();
    let fuse = MobileExperiment
        .run(
            &params(GovernorChoice::Fuse, 96, 33, 2),
            &RunContext::single(17),
        )
        .unwrap();
    let (ts, tf) = (
        stock.get("tpot_ms_mean").unwrap(),
        fuse.get("tpot_ms_mean").unwrap(),
    );
    let (es, ef) = (
        stock.get("decode_mj_per_token").unwrap(),
        fuse.get("decode_mj_per_token").unwrap(),
    );
    assert!(tf < ts, "TPOT fuse {tf} vs stock {ts}");
    assert!(
        ef <= es * 1.05,
        "decode energy/token fuse {ef} vs stock {es}"
    );
    assert!(fuse.get("ttft_ms_mean").unwrap() <= stock.get("ttft_ms_mean").unwrap() * 1.02);
    assert!(fuse.get("stock_gap_tpot_pct_max").unwrap() > 0.0);
}

#[test]
fn runs_are_deterministic() {
    let mut p = params(GovernorChoice::Stock, 50, 10, 3);
    p.workload.fixed_lengths = None;
    p.workload.max_response_tokens = 10;
    let a = MobileExperiment.run(&p, &RunContext::single(17)).unwrap();
    let b = MobileExperiment.run(&p, &RunContext::single(17)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_params_are_rejected_with_their_key() {
    let mut p = params(
        GovernorChoice::Fixed {
            cpu: 99,
            gpu: 0,
            mem: 0,
        },
        10,
        10,
        0,
    );
    p.workload.think_s = -1.0;
    p.stock.gpu.up_threshold = 1.5;
    p.engine.cpu_overlap = 2.0;
    p.soc.mem.efficiency = 0.0;
    p.fuse.range_bounds = vec![64, 32];
    let keys: Vec<String> = Checks::of(&p).into_iter().map(|e| e.path).collect();
    for k in [
        "governor.fixed.cpu",
        "workload.requests",
        "workload.think_s",
        "stock.gpu.up_threshold",
        "engine.cpu_overlap",
        "soc.mem.efficiency",
        "fuse.range_bounds",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
    assert!(Checks::of(&params(GovernorChoice::Stock, 10, 10, 1)).is_empty());
}

/// Prints the numbers of the README (FUSE headline on Pixel 7, the TinyLlama GPU example, other
/// phones): `cargo test -p mobile --release tests::report -- --ignored --nocapture`.
#[test]
#[ignore = "prints the report numbers; slow in debug"]
fn report() {
    let row = |soc: &str, llm: &str, g: GovernorChoice, fixed: Option<[u64; 2]>, n: u64| {
        let mut p = params(g, 1, 1, n);
        p.soc = preset(SOC, soc);
        p.llm = preset(LLM, llm);
        p.workload.fixed_lengths = fixed;
        p.workload.think_s = 2.0;
        p.workload.max_response_tokens = 128;
        p.fuse = FuseParams::default();
        p.series_interval_s = 0.0;
        MobileExperiment.run(&p, &RunContext::single(7)).unwrap()
    };
    println!(
        "soc | llm | governor | TTFT ms mean (change) | p50 | p90 | TPOT ms mean (change) | p50 | p90 | prefill mJ/tok | decode mJ/tok | W | gap TTFT/TPOT % (max)"
    );
    for soc in ["pixel-7", "snapdragon-8-gen-3", "dimensity-9300"] {
        let llms: &[&str] = if soc == "pixel-7" {
            &[
                "tinyllama-1.1b-q4",
                "deepseek-r1-distill-qwen-1.5b-q4",
                "stablelm-zephyr-3b-q4",
                "llama-2-7b-q4",
            ]
        } else {
            &["tinyllama-1.1b-q4", "llama-2-7b-q4"]
        };
        for llm in llms {
            let mut base = (0.0, 0.0);
            for (name, g) in [
                ("stock", GovernorChoice::Stock),
                ("performance", GovernorChoice::Performance),
                ("fuse", GovernorChoice::Fuse),
            ] {
                let o = row(soc, llm, g, None, if soc == "pixel-7" { 200 } else { 50 });
                let (tt, tp) = (
                    o.get("ttft_ms_mean").unwrap(),
                    o.get("tpot_ms_mean").unwrap(),
                );
                if name == "stock" {
                    base = (tt, tp);
                }
                let gap = o.get("stock_gap_ttft_pct_max").map(|_| {
                    format!(
                        "{:.1}/{:.1}",
                        o.get("stock_gap_ttft_pct_max").unwrap(),
                        o.get("stock_gap_tpot_pct_max").unwrap()
                    )
                });
                println!(
                    "{soc} | {llm} | {name} | {tt:.0} ({:+.1}%) | {:.0} | {:.0} | {tp:.1} ({:+.1}%) | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {}",
                    (tt / base.0 - 1.0) * 100.0,
                    o.get("ttft_ms_p50").unwrap(),
                    o.get("ttft_ms_p90").unwrap(),
                    (tp / base.1 - 1.0) * 100.0,
                    o.get("tpot_ms_p50").unwrap(),
                    o.get("tpot_ms_p90").unwrap(),
                    o.get("prefill_mj_per_token").unwrap(),
                    o.get("decode_mj_per_token").unwrap(),
                    o.get("energy_power_w_mean").unwrap(),
                    gap.unwrap_or_default()
                );
            }
        }
    }
}

/// Prints the TinyLlama GPU example (paper: governor ≈424 MHz → 215.1 ms, 848 MHz → 126.9 ms):
/// `cargo test -p mobile tests::report_example -- --ignored --nocapture`.
#[test]
#[ignore = "prints the report numbers"]
fn report_example() {
    let row = |soc: &str, llm: &str, g: GovernorChoice, fixed: Option<[u64; 2]>, n: u64| {
        let mut p = params(g, 1, 1, n);
        p.soc = preset(SOC, soc);
        p.llm = preset(LLM, llm);
        p.workload.fixed_lengths = fixed;
        p.workload.think_s = 2.0;
        p.series_interval_s = 0.0;
        MobileExperiment.run(&p, &RunContext::single(7)).unwrap()
    };
    println!("TinyLlama example (prompt 64, 128 decode tokens):");
    for (name, g) in [
        ("stock", GovernorChoice::Stock),
        (
            "gpu 400",
            GovernorChoice::Fixed {
                cpu: 17,
                gpu: 4,
                mem: 12,
            },
        ),
        (
            "gpu 848",
            GovernorChoice::Fixed {
                cpu: 17,
                gpu: 10,
                mem: 12,
            },
        ),
    ] {
        let o = row("pixel-7", "tinyllama-1.1b-q4", g, Some([64, 129]), 3);
        println!(
            "{name}: TPOT {:.1} ms, decode {:.1} mJ/token, gpu mean {:.0} MHz, cpu mean {:.0} MHz, mem mean {:.0} MHz",
            o.get("tpot_ms_mean").unwrap(),
            o.get("decode_mj_per_token").unwrap(),
            o.get("gpu_freq_mhz_mean").unwrap(),
            o.get("cpu_freq_mhz_mean").unwrap(),
            o.get("mem_freq_mhz_mean").unwrap()
        );
    }
}

#[test]
fn a_trace_file_drives_lengths_and_arrival_times() {
    let dir = std::env::temp_dir().join(format!("sysim-mobile-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("t.csv");
    std::fs::write(
        &file,
        "arrival_s,prompt_tokens,output_tokens\n0.0,20,3\n30.0,40,2\n30.0,10,4\n99,5,5\n",
    )
    .unwrap();
    let mut p = params(GovernorChoice::Performance, 1, 1, 3);
    p.workload.fixed_lengths = None;
    p.workload.trace_file = Some(file.display().to_string());
    p.workload.arrivals = ArrivalKind::Trace;
    assert!(Checks::of(&p).is_empty());
    let o = MobileExperiment.run(&p, &RunContext::single(1)).unwrap();
    assert_eq!(o.get("requests"), Some(3.0));
    // lengths and arrivals from the file, in order: the run ends after the third request
    let cost = CostModel::new(p.soc.clone(), p.llm.clone(), p.engine.clone());
    let r = simulate(
        &cost,
        &Policy::Stock(p.stock.clone()),
        Arrivals::Trace {
            arrival_s: vec![0.0, 30.0, 30.0],
        },
        vec![(20, 3), (40, 2), (10, 4)],
        RunContext::single(1).rng("t"),
        0.0,
    )
    .unwrap();
    let arrivals: Vec<f64> = r.done.iter().map(|d| d.request.arrival_s).collect();
    assert!((arrivals[1] - 30.0).abs() < 1e-6 && (arrivals[2] - 30.0).abs() < 1e-6);
    // a bad row is a clear error naming file, line and column
    std::fs::write(
        &file,
        "arrival_s,prompt_tokens,output_tokens\n0,5,5\n1,5,x\n",
    )
    .unwrap();
    let e = MobileExperiment
        .run(&p, &RunContext::single(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.csv:3:5"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_timeline_integrates_to_each_domains_energy_and_mean_frequency() {
    use super::experiment::simulate_with;
    use sim::trace::EventKind;
    let p = params(GovernorChoice::Stock, 40, 12, 2);
    let cost = CostModel::new(p.soc.clone(), p.llm.clone(), p.engine.clone());
    let ctx = RunContext::single(17).traced();
    let r = simulate_with(
        &cost,
        &Policy::Stock(p.stock.clone()),
        Arrivals::Closed { think_s: 0.3 },
        vec![(40, 12), (80, 6)],
        ctx.rng("t"),
        0.0,
        None,
        true,
    )
    .unwrap();
    let trace = super::timeline::record(&r, &cost, &ctx);
    assert_eq!(trace.dropped(), 0);
    // a step function (t, value) integrated over [0, end_s]
    let integral = |track: &str, end_s: f64| {
        let i = trace.tracks().iter().position(|t| t == track).unwrap();
        let pts: Vec<(f64, f64)> = trace
            .events()
            .iter()
            .filter(|e| e.track == i)
            .map(|e| match e.kind {
                EventKind::Counter { value } => (e.t_s, value),
                _ => unreachable!("{track} is a counter track"),
            })
            .collect();
        let mut sum = 0.0;
        for (k, &(t, v)) in pts.iter().enumerate() {
            let next = pts.get(k + 1).map_or(end_s, |n| n.0);
            sum += v * (next - t);
        }
        (sum, pts.len())
    };
    for s in &r.domains {
        let name = super::soc::Domain::ALL[s.domain as usize].name();
        let end_s = s.energy_j / s.mean_power_w;
        let (energy_j, _) = integral(&format!("{name}/power_w"), end_s);
        let rel = (energy_j - s.energy_j).abs() / s.energy_j;
        assert!(
            rel < 0.01,
            "{name}: timeline {energy_j} J vs domain {} J",
            s.energy_j
        );
        let (mhz_s, samples) = integral(&format!("{name}/freq_mhz"), end_s);
        let mean_mhz = mhz_s / end_s;
        assert!(
            (mean_mhz - s.mean_freq_hz / 1e6).abs() < 1e-6 * mean_mhz,
            "{name}: timeline {mean_mhz} MHz vs domain {}",
            s.mean_freq_hz / 1e6
        );
        assert_eq!(
            samples as u64,
            s.transitions + 1,
            "{name}: one sample per switch"
        );
    }
    // every step shows on the GPU track: as many GPU slices as steps with GPU work
    assert!(trace.busy_s("gpu/layers") > 0.0);
    let first_token_s = r.done[0].first_token_s;
    assert!(trace.busy_s("requests") > first_token_s);
    // off by default: nothing recorded
    let off = super::timeline::record(&r, &cost, &RunContext::single(17));
    assert!(off.events().is_empty());
}
