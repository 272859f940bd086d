//! `--trace-systems FILE`: every timed system run as a span in a Chrome trace (the JSON trace
//! event format that Perfetto and `chrome://tracing` open), one track per thread.
//!
//! Recording is process-wide and off until [`start`]; while off, a system run costs one atomic
//! load more. Spans come from the same clock as the per-stage timings
//! ([`super::resources::StageClock`]), so `bench --no-timing` records nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::schedule::Stage;

static ON: AtomicBool = AtomicBool::new(false);
static RECORDER: Mutex<Option<Recorder>> = Mutex::new(None);
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

struct Recorder {
    origin: Instant,
    spans: Vec<Span>,
}

struct Span {
    label: String,
    stage: Stage,
    start_ns: u64,
    dur_ns: u64,
    thread: u64,
}

/// Starts recording (clearing earlier spans).
pub fn start() {
    let mut r = RECORDER.lock().unwrap_or_else(|p| p.into_inner());
    *r = Some(Recorder {
        origin: Instant::now(),
        spans: Vec::new(),
    });
    ON.store(true, Ordering::SeqCst);
}

/// Whether spans are being recorded.
#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Records one system run that started at `start` and took `dur_ns`.
pub(crate) fn record(label: &str, stage: Stage, start: Instant, dur_ns: u64) {
    let thread = THREAD.with(|t| *t);
    let mut r = RECORDER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = r.as_mut() {
        let start_ns = start.saturating_duration_since(r.origin).as_nanos() as u64;
        r.spans.push(Span {
            label: label.to_string(),
            stage,
            start_ns,
            dur_ns,
            thread,
        });
    }
}

/// Stops recording and returns the trace as Chrome trace-event JSON, with the number of spans.
pub fn finish() -> (String, usize) {
    ON.store(false, Ordering::SeqCst);
    let recorder = RECORDER.lock().unwrap_or_else(|p| p.into_inner()).take();
    let spans = recorder.map(|r| r.spans).unwrap_or_default();
    let mut events: Vec<serde_json::Value> = Vec::with_capacity(spans.len() + 8);
    let mut threads: Vec<u64> = spans.iter().map(|s| s.thread).collect();
    threads.sort_unstable();
    threads.dedup();
    for t in &threads {
        events.push(serde_json::json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": t,
            "args": {"name": format!("thread {t}")},
        }));
    }
    for s in &spans {
        events.push(serde_json::json!({
            "name": s.label,
            "cat": s.stage.name(),
            "ph": "X",
            "pid": 1,
            "tid": s.thread,
            "ts": s.start_ns as f64 / 1000.0,
            "dur": s.dur_ns as f64 / 1000.0,
        }));
    }
    let json = serde_json::json!({"traceEvents": events, "displayTimeUnit": "ms"});
    (json.to_string(), spans.len())
}
