//! dedup-bench: redb 2.6.4 (the embedded store's engine) against fjall 2.11 (an LSM tree) for the write
//! pattern of durable event ingestion: per event, three insert-if-absent operations on random keys (a client's
//! event id, a billing key under a random session, a session minute), one fsynced group commit per batch, on
//! stores that already hold two million events. A standalone project, outside the workspace, so the
//! candidate engine is not a dependency of the product; results of 2026-12-04 in `results-2026-12-04.txt`.
//!
//! Subcommands (driver spawns itself):
//!   prep  <redb|fjall> <dir> <n_events>
//!   run   <variant> <dir> <B> <secs> <max_events>   variant: redb64|redb1g|fjalldef|fjall64
//!   bench <B> <secs> <max_events> <rounds>          (full A/B/A/B driver)
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fjall::{Config, PartitionCreateOptions, PersistMode};
use redb::{Database, Durability, ReadableTableMetadata, TableDefinition};

const EV: TableDefinition<&[u8], i64> = TableDefinition::new("event_ids");
const BILL: TableDefinition<&[u8], i64> = TableDefinition::new("billing");
const SM: TableDefinition<&[u8], u64> = TableDefinition::new("session_minute");

const PREP_EVENTS_DEFAULT: u64 = 2_000_000;
const BASE_TIME: i64 = 1_760_000_000;

/// splitmix64, seeded per event index so the sequence is identical for every engine
/// and any event i can be generated independently.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uuid_v4(seed: u64) -> uuid::Uuid {
    let a = splitmix(seed);
    let b = splitmix(a ^ 0xDEAD_BEEF_CAFE_F00D);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

struct EventKeys {
    event_id: String,
    billing: String,
    sess_min: String,
    time: i64,
}

fn event_keys(i: u64) -> EventKeys {
    let event_id = uuid_v4(i.wrapping_mul(2)).hyphenated().to_string();
    let session = format!("durable-{}", uuid_v4(i.wrapping_mul(2) + 1).simple());
    let time = BASE_TIME + (i / 1000) as i64; // 1000 events per second of event time
    let minute = time / 60;
    EventKeys {
        event_id,
        billing: format!("{session}-b1-0\x1fimpression"),
        sess_min: format!("{session}\x1f{minute}"),
        time,
    }
}

fn proc_write_bytes() -> u64 {
    proc_io("write_bytes:")
}

/// sectors written on /dev/vda (whole machine, includes other processes)
fn vda_write_bytes() -> u64 {
    let s = std::fs::read_to_string("/sys/block/vda/stat").unwrap_or_default();
    s.split_whitespace().nth(6).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0) * 512
}

fn proc_io(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    for l in s.lines() {
        if let Some(v) = l.strip_prefix(field) {
            return v.trim().parse().unwrap_or(0);
        }
    }
    0
}

/// CPU seconds of this process (all threads): utime + stime from `/proc/self/stat`, in clock ticks of 1/100 s.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// (apparent bytes, allocated bytes)
fn dir_size(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut app = 0;
    let mut alloc = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            if m.is_dir() {
                let (a, b) = dir_size(&e.path());
                app += a;
                alloc += b;
            } else {
                app += m.len();
                alloc += m.blocks() * 512;
            }
        }
    }
    (app, alloc)
}

// ---------------- redb ----------------

fn redb_open(dir: &Path, cache: usize) -> Database {
    std::fs::create_dir_all(dir).unwrap();
    Database::builder()
        .set_cache_size(cache)
        .create(dir.join("store.redb"))
        .unwrap()
}

/// One group commit: insert-if-absent via insert() + returned old value. Returns #new keys.
fn redb_group(db: &Database, from: u64, to: u64) -> u64 {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::Immediate);
    let mut fresh = 0;
    {
        let mut ev = txn.open_table(EV).unwrap();
        let mut bill = txn.open_table(BILL).unwrap();
        let mut sm = txn.open_table(SM).unwrap();
        for i in from..to {
            let k = event_keys(i);
            if ev.insert(k.event_id.as_bytes(), k.time).unwrap().is_none() {
                fresh += 1;
            }
            if bill.insert(k.billing.as_bytes(), k.time).unwrap().is_none() {
                fresh += 1;
            }
            if sm.insert(k.sess_min.as_bytes(), 1u64).unwrap().is_none() {
                fresh += 1;
            }
        }
    }
    txn.commit().unwrap();
    fresh
}

// ---------------- fjall ----------------

struct Fj {
    ks: fjall::Keyspace,
    ev: fjall::PartitionHandle,
    bill: fjall::PartitionHandle,
    sm: fjall::PartitionHandle,
}

fn fjall_open(dir: &Path, cache: Option<u64>) -> Fj {
    let mut cfg = Config::new(dir);
    if let Some(c) = cache {
        cfg = cfg.cache_size(c);
    }
    let ks = cfg.open().unwrap();
    let ev = ks.open_partition("event_ids", PartitionCreateOptions::default()).unwrap();
    let bill = ks.open_partition("billing", PartitionCreateOptions::default()).unwrap();
    let sm = ks.open_partition("session_minute", PartitionCreateOptions::default()).unwrap();
    Fj { ks, ev, bill, sm }
}

/// One group commit: point get per key, absent keys into ONE batch, commit with
/// durability SyncData (fdatasync of the journal before commit() returns).
fn fjall_group(f: &Fj, from: u64, to: u64, durable: bool) -> u64 {
    let mut batch = f.ks.batch();
    if durable {
        batch = batch.durability(Some(PersistMode::SyncData));
    }
    let mut fresh = 0;
    for i in from..to {
        let k = event_keys(i);
        if f.ev.get(k.event_id.as_bytes()).unwrap().is_none() {
            batch.insert(&f.ev, k.event_id.as_bytes(), k.time.to_le_bytes());
            fresh += 1;
        }
        if f.bill.get(k.billing.as_bytes()).unwrap().is_none() {
            batch.insert(&f.bill, k.billing.as_bytes(), k.time.to_le_bytes());
            fresh += 1;
        }
        if f.sm.get(k.sess_min.as_bytes()).unwrap().is_none() {
            batch.insert(&f.sm, k.sess_min.as_bytes(), 1u64.to_le_bytes());
            fresh += 1;
        }
    }
    batch.commit().unwrap();
    fresh
}

// ---------------- subcommands ----------------

fn prep(engine: &str, dir: &Path, n: u64) {
    let t0 = Instant::now();
    let chunk = 50_000;
    match engine {
        "redb" => {
            let db = redb_open(dir, 1 << 30);
            let mut i = 0;
            while i < n {
                let to = (i + chunk).min(n);
                redb_group(&db, i, to);
                i = to;
            }
            let r = db.begin_read().unwrap();
            let t = r.open_table(EV).unwrap();
            eprintln!("redb prep: {} event ids", t.len().unwrap());
        }
        "fjall" => {
            let f = fjall_open(dir, None);
            let mut i = 0;
            while i < n {
                let to = (i + chunk).min(n);
                fjall_group(&f, i, to, false);
                i = to;
            }
            f.ks.persist(PersistMode::SyncAll).unwrap();
            // flush memtables to segments so the measured run starts from on-disk trees
            for p in [&f.ev, &f.bill, &f.sm] {
                p.rotate_memtable_and_wait().unwrap();
            }
            // let background compaction settle
            let mut idle = 0;
            while idle < 20 {
                std::thread::sleep(Duration::from_millis(100));
                if f.ks.active_compactions() == 0 { idle += 1 } else { idle = 0 }
            }
            eprintln!(
                "fjall prep: segments ev={} bill={} sm={} approx_len ev={}",
                f.ev.segment_count(),
                f.bill.segment_count(),
                f.sm.segment_count(),
                f.ev.approximate_len()
            );
        }
        _ => panic!("engine"),
    }
    let (a, b) = dir_size(dir);
    eprintln!("prep {engine}: {n} events in {:.1}s, dir apparent={} MiB alloc={} MiB",
        t0.elapsed().as_secs_f64(), a >> 20, b >> 20);
}

/// Prints one line: RESULT variant B events secs ev/s cpu_s write_bytes fresh_keys
fn run(variant: &str, dir: &Path, b: u64, secs: f64, max_events: u64, start: u64) {
    enum E {
        R(Database),
        F(Fj),
    }
    let e = match variant {
        "redb64" => E::R(redb_open(dir, 64 << 20)),
        "redb1g" => E::R(redb_open(dir, 1 << 30)),
        "fjalldef" => E::F(fjall_open(dir, None)),
        "fjall64" => E::F(fjall_open(dir, Some(64 << 20))),
        _ => panic!("variant"),
    };
    let wb0 = proc_write_bytes();
    let wc0 = proc_io("wchar:");
    let vd0 = vda_write_bytes();
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let deadline = Duration::from_secs_f64(secs);
    let mut i = start;
    let mut fresh = 0;
    let mut lat = Vec::new();
    while i - start < max_events && t0.elapsed() < deadline {
        let to = i + b;
        let tc = Instant::now();
        fresh += match &e {
            E::R(db) => redb_group(db, i, to),
            E::F(f) => fjall_group(f, i, to, true),
        };
        lat.push(tc.elapsed().as_secs_f64() * 1e3);
        i = to;
    }
    let el = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let wb = proc_write_bytes() - wb0;
    let wc = proc_io("wchar:") - wc0;
    let vd = vda_write_bytes() - vd0;
    let n = i - start;
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p50 = lat[lat.len() / 2];
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
    // close (fjall: stops background threads; redb: nothing pending)
    let tclose = Instant::now();
    drop(e);
    let close_s = tclose.elapsed().as_secs_f64();
    let wb_after_close = proc_write_bytes() - wb0;
    println!(
        "RESULT {variant} {b} {n} {el:.3} {:.0} {cpu:.3} {wb} {fresh} {p50:.2} {p99:.2} {close_s:.3} {wb_after_close} {wc} {vd}",
        n as f64 / el
    );
}

fn median(v: &mut Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn sh(cmd: &str) {
    let st = Command::new("bash").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn bench(bs: &[u64], secs: f64, max_events: u64, rounds: usize, prep_n: u64) {
    let exe = std::env::current_exe().unwrap();
    let root = PathBuf::from("/work/scratch");
    let tpl_r = root.join("data-tpl-redb");
    let tpl_f = root.join("data-tpl-fjall");
    for (eng, tpl) in [("redb", &tpl_r), ("fjall", &tpl_f)] {
        if !tpl.join("done").exists() {
            let _ = std::fs::remove_dir_all(tpl);
            let st = Command::new(&exe).args(["prep", eng, tpl.to_str().unwrap(), &prep_n.to_string()]).status().unwrap();
            assert!(st.success());
            std::fs::write(tpl.join("done"), "").unwrap();
        }
    }
    let variants = ["redb64", "fjalldef", "redb1g", "fjall64"];
    println!("variant B events secs ev/s cpu_s write_bytes/event fresh_keys p50ms p99ms close_s disk_apparent_MiB disk_alloc_MiB wb/event_incl_close");
    for &b in bs {
        let mut rates: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
        let mut round_rates: Vec<std::collections::BTreeMap<&str, f64>> = vec![];
        for r in 0..rounds {
            let mut rr = std::collections::BTreeMap::new();
            for v in variants {
                let tpl = if v.starts_with("redb") { &tpl_r } else { &tpl_f };
                let d = root.join(format!("data-run-{v}"));
                let _ = std::fs::remove_dir_all(&d);
                sh(&format!("cp -a {} {} && rm -f {}/done && sync", tpl.display(), d.display(), d.display()));
                let out = Command::new(&exe)
                    .args(["run", v, d.to_str().unwrap(), &b.to_string(), &secs.to_string(), &max_events.to_string(), &prep_n.to_string()])
                    .output()
                    .unwrap();
                let s = String::from_utf8_lossy(&out.stdout);
                let line = s.lines().find(|l| l.starts_with("RESULT")).unwrap_or_else(|| panic!("{s} {}", String::from_utf8_lossy(&out.stderr)));
                let f: Vec<&str> = line.split_whitespace().collect();
                let n: f64 = f[3].parse().unwrap();
                let rate: f64 = f[5].parse().unwrap();
                let wb: f64 = f[7].parse().unwrap();
                let wbc: f64 = f[12].parse().unwrap();
                let wc: f64 = f[13].parse().unwrap();
                let vd: f64 = f[14].parse().unwrap();
                let (app, alloc) = dir_size(&d);
                println!(
                    "r{r} {v:9} B={b} n={} t={}s ev/s={} cpu={}s wB/ev={:.0} fresh={} p50={}ms p99={}ms close={}s disk_app={}MiB disk_alloc={}MiB wB/ev(incl close)={:.0} wchar/ev={:.0} vda/ev={:.0}",
                    f[3], f[4], f[5], f[6], wb / n, f[8], f[9], f[10], f[11], app >> 20, alloc >> 20, wbc / n, wc / n, vd / n
                );
                rates.entry(v).or_default().push(rate);
                rr.insert(v, rate);
                std::fs::remove_dir_all(&d).unwrap();
            }
            println!(
                "r{r} B={b} ratio fjalldef/redb64={:.2} fjall64/redb64={:.2} fjalldef/redb1g={:.2} fjall64/redb1g={:.2}",
                rr["fjalldef"] / rr["redb64"], rr["fjall64"] / rr["redb64"], rr["fjalldef"] / rr["redb1g"], rr["fjall64"] / rr["redb1g"]
            );
            round_rates.push(rr);
        }
        for v in variants {
            let mut x = rates[v].clone();
            let mn = x.iter().cloned().fold(f64::MAX, f64::min);
            println!("SUMMARY B={b} {v:9} min={mn:.0} median={:.0} ev/s", median(&mut x));
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(|s| s.as_str()) {
        Some("prep") => prep(&a[2], Path::new(&a[3]), a[4].parse().unwrap()),
        Some("run") => run(&a[2], Path::new(&a[3]), a[4].parse().unwrap(), a[5].parse().unwrap(), a[6].parse().unwrap(),
            a.get(7).map(|s| s.parse().unwrap()).unwrap_or(PREP_EVENTS_DEFAULT)),
        Some("bench") => {
            let bs: Vec<u64> = a[2].split(',').map(|s| s.parse().unwrap()).collect();
            let prep_n = a.get(6).map(|s| s.parse().unwrap()).unwrap_or(PREP_EVENTS_DEFAULT);
            bench(&bs, a[3].parse().unwrap(), a[4].parse().unwrap(), a[5].parse().unwrap(), prep_n)
        }
        _ => eprintln!("usage: bench <B,B> <secs> <max_events> <rounds> [prep_events]"),
    }
}
