//! GPU time per kernel from timestamp queries (on CPU adapters, from the host clock around a
//! submission of one dispatch): a table sorted by total time and a Chrome trace.

use super::Gpu;
use std::collections::HashMap;

const CAPACITY: u32 = 4096; // queries per set: 2 per dispatch

pub(super) struct Profiler {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    period_ns: f64,
    stats: HashMap<&'static str, KernelStat>,
    /// (label, start ns, duration ns) of every timed dispatch, for the trace.
    events: Vec<(&'static str, f64, f64)>,
    /// Offset that keeps trace time stamps of later submissions after earlier ones.
    clock: f64,
}

#[derive(Clone, Debug, Default)]
pub struct KernelStat {
    pub calls: u64,
    pub total_ns: f64,
    pub max_ns: f64,
}

#[derive(Clone, Debug)]
pub struct ProfileReport {
    /// (kernel, stats), sorted by total time, largest first.
    pub kernels: Vec<(String, KernelStat)>,
    pub events: Vec<(String, f64, f64)>,
}

impl Profiler {
    pub(super) fn new(gpu: &Gpu) -> Profiler {
        let query_set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("headroom.timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: CAPACITY,
        });
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("headroom.timestamps.resolve"),
            size: CAPACITY as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Profiler {
            query_set,
            resolve,
            period_ns: gpu.queue.get_timestamp_period() as f64,
            stats: HashMap::new(),
            events: Vec::new(),
            clock: 0.0,
        }
    }

    pub(super) fn has_room(&self, timed: usize) -> bool {
        (timed as u32 + 1) * 2 <= CAPACITY
    }

    pub(super) fn query_set(&self) -> &wgpu::QuerySet {
        &self.query_set
    }

    pub(super) fn resolve(&self, encoder: &mut wgpu::CommandEncoder, dispatches: u32) {
        encoder.resolve_query_set(&self.query_set, 0..dispatches * 2, &self.resolve, 0);
    }

    /// Reads the resolved timestamps of the submission just made. With `host_clock` (the
    /// instant of submission; the submission then holds one dispatch) the dispatch's duration
    /// is the host time from then until the timestamps could be read, and its timestamps
    /// only place it in the trace.
    pub(super) fn collect(
        &mut self,
        gpu: &Gpu,
        timed: &[(&'static str, u32)],
        host_clock: Option<std::time::Instant>,
    ) {
        let n = timed.len() * 2;
        let raw: Vec<u32> = {
            let words = gpu.read_range_f32(&self.resolve, 0, n * 2);
            words.iter().map(|w| w.to_bits()).collect()
        };
        let host_ns = host_clock.map(|t| t.elapsed().as_nanos() as f64);
        let ticks: Vec<u64> = (0..n)
            .map(|i| raw[2 * i] as u64 | ((raw[2 * i + 1] as u64) << 32))
            .collect();
        let origin = ticks.iter().copied().min().unwrap_or(0);
        let mut last_end = 0.0f64;
        for (label, base) in timed {
            let b = *base as usize;
            let start = ticks[b].saturating_sub(origin) as f64 * self.period_ns;
            let dur =
                host_ns.unwrap_or(ticks[b + 1].saturating_sub(ticks[b]) as f64 * self.period_ns);
            let s = self.stats.entry(label).or_default();
            s.calls += 1;
            s.total_ns += dur;
            s.max_ns = s.max_ns.max(dur);
            self.events.push((label, self.clock + start, dur));
            last_end = last_end.max(start + dur);
        }
        self.clock += last_end + 1000.0;
    }

    /// Adds a step timed by the host clock alone (a copy, which takes no timestamps here).
    pub(super) fn record_host(&mut self, label: &'static str, dur: f64) {
        let s = self.stats.entry(label).or_default();
        s.calls += 1;
        s.total_ns += dur;
        s.max_ns = s.max_ns.max(dur);
        self.events.push((label, self.clock, dur));
        self.clock += dur + 1000.0;
    }

    pub(super) fn report(&self) -> ProfileReport {
        let mut kernels: Vec<(String, KernelStat)> = self
            .stats
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        kernels.sort_by(|a, b| b.1.total_ns.total_cmp(&a.1.total_ns));
        let events = self
            .events
            .iter()
            .map(|(l, s, d)| (l.to_string(), *s, *d))
            .collect();
        ProfileReport { kernels, events }
    }
}

impl ProfileReport {
    /// The table `--profile` prints.
    pub fn table(&self) -> String {
        let total: f64 = self.kernels.iter().map(|(_, s)| s.total_ns).sum();
        let mut out = format!(
            "{:<28} {:>7} {:>12} {:>11} {:>11} {:>6}\n",
            "kernel", "calls", "total ms", "mean us", "max us", "%"
        );
        for (name, s) in &self.kernels {
            out.push_str(&format!(
                "{:<28} {:>7} {:>12.3} {:>11.1} {:>11.1} {:>6.1}\n",
                name,
                s.calls,
                s.total_ns / 1e6,
                s.total_ns / 1e3 / s.calls.max(1) as f64,
                s.max_ns / 1e3,
                100.0 * s.total_ns / total.max(1e-9)
            ));
        }
        out.push_str(&format!(
            "{:<28} {:>7} {:>12.3}\n",
            "total GPU time",
            "",
            total / 1e6
        ));
        out
    }

    /// Chrome trace-event JSON (open in chrome://tracing or Perfetto).
    pub fn chrome_trace(&self) -> String {
        let events: Vec<serde_json::Value> = self
            .events
            .iter()
            .map(|(name, start, dur)| {
                serde_json::json!({
                    "name": name, "ph": "X", "pid": 1, "tid": 1,
                    "ts": start / 1e3, "dur": dur / 1e3, "cat": "kernel"
                })
            })
            .collect();
        serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" }).to_string()
    }
}
