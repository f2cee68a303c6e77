//! Named happenings: each one logs with structured fields and counts, once per batch.

use tracing::{debug, info, warn};

use super::{DataSourceMetrics, Tally};
use crate::beam::Outcome;

/// Events were handed to the pipeline; they stay pending until their outcome is recorded.
#[derive(Debug, Clone, Copy)]
pub struct EventsReceived {
    /// How many.
    pub count: u64,
}

impl EventsReceived {
    /// Counts the events as received and pending.
    pub fn emit(self, metrics: &DataSourceMetrics) {
        metrics.received.inc_by(self.count);
        metrics.pending.inc_by(self.count as i64);
    }
}

/// Records a batch's outcomes: sent, dropped by reason and failed; they are no longer pending.
/// Returns the batch's tally.
pub fn record_outcomes(metrics: &DataSourceMetrics, outcomes: &[Outcome]) -> Tally {
    let tally = Tally::of(outcomes);
    metrics.sent.inc_by(tally.sent);
    metrics.failed.inc_by(tally.failed);
    for (reason, count) in tally.drop_reasons() {
        metrics.dropped_counter(reason).inc_by(count);
        debug!(
            dataSource = %metrics.data_source,
            reason = reason.as_str(),
            count,
            "events dropped"
        );
    }
    metrics.pending.dec_by(tally.received as i64);
    if tally.failed > 0 {
        let error = outcomes.iter().find_map(|o| match o {
            Outcome::Failed(e) => Some(e.to_string()),
            _ => None,
        });
        warn!(
            dataSource = %metrics.data_source,
            count = tally.failed,
            error = error.as_deref().unwrap_or(""),
            "events failed"
        );
    }
    debug!(
        dataSource = %metrics.data_source,
        sent = tally.sent,
        dropped = tally.dropped_total(),
        failed = tally.failed,
        "batch outcomes"
    );
    tally
}

/// Something happened to a Druid task of the dataSource; each variant holds the task id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvent<'a> {
    /// Created through the Overlord (it counts as active once a beam pushes to it).
    Created(&'a str),
    /// Found, e.g. rebuilt from shared metadata: counts as active.
    Attached(&'a str),
    /// No longer pushed to by this process (its interval closed, or it is gone).
    Released(&'a str),
}

impl TaskEvent<'_> {
    /// Counts the change and logs it.
    pub fn emit(self, metrics: &DataSourceMetrics) {
        let ds = &metrics.data_source;
        match self {
            TaskEvent::Created(task) => {
                metrics.tasks_created.inc();
                info!(dataSource = %ds, task, "task created");
            }
            TaskEvent::Attached(task) => {
                metrics.tasks_active.inc();
                debug!(dataSource = %ds, task, "task attached");
            }
            TaskEvent::Released(task) => {
                metrics.tasks_active.dec();
                info!(dataSource = %ds, task, "task released");
            }
        }
    }
}

/// Druid reported its own row counts for the dataSource (a supervisor's task stats), in
/// [`DRUID_ROW_KINDS`](super::DRUID_ROW_KINDS) order; rows it rejected are counted, not lost
/// silently.
#[derive(Debug, Clone, Copy)]
pub struct DruidRowsCounted {
    /// processed, processedWithError, thrownAway, unparseable.
    pub counts: [u64; 4],
}

impl DruidRowsCounted {
    /// Sets the gauges; logs a warning when Druid's rejections grew since the last report.
    pub fn emit(self, metrics: &DataSourceMetrics) {
        let before = metrics.druid_rows();
        for (gauge, count) in metrics.druid_rows.iter().zip(self.counts) {
            gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let rejected = |c: [i64; 4]| c[2] + c[3];
        let now = self.counts.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
        if rejected(now) > rejected(before) {
            warn!(
                dataSource = %metrics.data_source,
                thrownAway = now[2],
                unparseable = now[3],
                "Druid rejected rows of the dataSource's topic (late or early messages, a \
                 transformSpec filter, or rows it could not parse)"
            );
        }
    }
}
