//! Resident set size from `/proc/<pid>/status` (`VmRSS`), sampled once a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;

/// (seconds since start, MiB) pairs.
type Samples = Mutex<Vec<(f64, f64)>>;

/// The resident set of process `pid`, in MiB (Linux only).
pub fn rss_mib_of(pid: u32) -> Option<f64> {
    read(&format!("/proc/{pid}/status"))
}

/// This process's resident set, in MiB (Linux only).
pub fn rss_mib() -> Option<f64> {
    read("/proc/self/status")
}

fn read(path: &str) -> Option<f64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Samples this process's RSS every second until stopped.
#[derive(Debug)]
pub struct Sampler {
    samples: Arc<Samples>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling now (one sample at once, then one a second).
    pub fn start() -> Self {
        let samples: Arc<Samples> = Arc::default();
        let into = samples.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let (Some(mib), Ok(mut v)) = (rss_mib(), into.lock()) {
                    v.push((started.elapsed().as_secs_f64(), mib));
                }
            }
        });
        Self { samples, task }
    }

    /// Stops and returns the samples.
    pub fn stop(self) -> Vec<(f64, f64)> {
        self.task.abort();
        let mut samples = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        if let Some(mib) = rss_mib() {
            let last = samples.last().map_or(0.0, |s| s.0);
            samples.push((last + 1.0, mib));
        }
        samples
    }
}

/// Least-squares slope of `(t, y)` points, in y per second; 0 with fewer than 2 points.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let num: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_y)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_is_read() {
        let mib = rss_mib().expect("VmRSS on Linux");
        assert!(mib > 0.5 && mib < 100_000.0, "{mib}");
    }

    #[test]
    fn slope_of_a_line_and_of_a_flat_series() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 2.0 * f64::from(i) + 5.0))
            .collect();
        assert!((slope(&line) - 2.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 42.0)).collect();
        assert_eq!(slope(&flat), 0.0);
        assert_eq!(slope(&[(1.0, 3.0)]), 0.0);
    }
}
