//! The job of the `clicks` example: a synthetic click stream, counted per minute, page and
//! country (event-time tumbling windows), sunk into Druid through `tranquility-generic`.
//!
//! A window closes when a click of another minute arrives. A late click reopens its minute
//! and yields a second row for it; Druid's rollup adds the two, so totals stay right.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::{stream, Stream, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tranquility::pipeline::DataSourcePipeline;
use tranquility_generic::{drive, DriveReport, Json, SinkError};

const PAGES: [&str; 5] = ["/", "/search", "/cart", "/checkout", "/help"];
const COUNTRIES: [&str; 4] = ["DE", "FR", "JP", "US"];

/// One click.
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The page clicked.
    pub page: &'static str,
    /// The visitor's country.
    pub country: &'static str,
}

/// One row for Druid: how many clicks a page got from a country in a minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinuteCount {
    /// The minute, ISO-8601.
    pub timestamp: String,
    /// The page.
    pub page: &'static str,
    /// The country.
    pub country: &'static str,
    /// Clicks in the minute.
    pub clicks: u64,
}

/// `count` clicks spread evenly over the `span` before `now`, pages and countries drawn from
/// a generator seeded with `seed` (the same seed gives the same clicks).
pub fn synthetic_clicks(
    count: usize,
    span: Duration,
    now: DateTime<Utc>,
    seed: u64,
) -> impl Stream<Item = Click> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = now - TimeDelta::from_std(span).unwrap_or(TimeDelta::zero());
    let step = span.as_millis() as i64 / count.max(1) as i64;
    stream::iter((0..count).map(move |i| Click {
        timestamp: start + TimeDelta::milliseconds(step * i as i64),
        page: PAGES[rng.random_range(0..PAGES.len())],
        country: COUNTRIES[rng.random_range(0..COUNTRIES.len())],
    }))
}

/// The open window: its minute and counts per (page, country).
#[derive(Debug, Default)]
struct Window {
    minute: Option<DateTime<Utc>>,
    counts: BTreeMap<(&'static str, &'static str), u64>,
}

impl Window {
    /// Counts a click; returns the rows of the window it closed, if any.
    fn add(&mut self, click: &Click) -> Vec<MinuteCount> {
        let minute = click
            .timestamp
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(click.timestamp);
        let closed = if self.minute != Some(minute) {
            let rows = self.close();
            self.minute = Some(minute);
            rows
        } else {
            Vec::new()
        };
        *self.counts.entry((click.page, click.country)).or_default() += 1;
        closed
    }

    /// The rows of the open window, which is emptied.
    fn close(&mut self) -> Vec<MinuteCount> {
        let Some(minute) = self.minute else {
            return Vec::new();
        };
        let timestamp = minute.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((page, country), clicks)| MinuteCount {
                timestamp: timestamp.clone(),
                page,
                country,
                clicks,
            })
            .collect()
    }
}

/// Clicks counted per minute, page and country; each window is emitted when it closes, the
/// last one when the clicks end.
pub fn per_minute(clicks: impl Stream<Item = Click>) -> impl Stream<Item = MinuteCount> {
    let state = (Box::pin(clicks), Window::default(), false);
    stream::unfold(state, |(mut clicks, mut window, ended)| async move {
        if ended {
            return None;
        }
        loop {
            match clicks.next().await {
                Some(click) => {
                    let closed = window.add(&click);
                    if !closed.is_empty() {
                        return Some((closed, (clicks, window, false)));
                    }
                }
                None => return Some((window.close(), (clicks, window, true))),
            }
        }
    })
    .flat_map(stream::iter)
}

/// The whole job: counts `clicks` per minute and sends the rows through `pipeline`; returns
/// the outcome counts of the rows.
pub async fn run(
    clicks: impl Stream<Item = Click>,
    pipeline: &DataSourcePipeline,
) -> Result<DriveReport, SinkError> {
    drive(per_minute(clicks).map(Json), pipeline).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_every_click_once_per_minute_page_and_country() {
        let now = "2024-05-01T10:03:30Z".parse::<DateTime<Utc>>().unwrap();
        let clicks: Vec<Click> = synthetic_clicks(600, Duration::from_secs(180), now, 7)
            .collect()
            .await;
        let rows: Vec<MinuteCount> = per_minute(stream::iter(clicks.clone())).collect().await;
        assert_eq!(rows.iter().map(|r| r.clicks).sum::<u64>(), 600);
        let minutes: std::collections::BTreeSet<&str> =
            rows.iter().map(|r| r.timestamp.as_str()).collect();
        assert_eq!(
            minutes.into_iter().collect::<Vec<_>>(),
            [
                "2024-05-01T10:00:00.000Z",
                "2024-05-01T10:01:00.000Z",
                "2024-05-01T10:02:00.000Z",
                "2024-05-01T10:03:00.000Z"
            ]
        );
        let first = rows
            .iter()
            .find(|r| r.timestamp.ends_with("10:01:00.000Z"))
            .unwrap();
        let expected = clicks
            .iter()
            .filter(|c| {
                c.timestamp.format("%H:%M").to_string() == "10:01"
                    && c.page == first.page
                    && c.country == first.country
            })
            .count() as u64;
        assert_eq!(first.clicks, expected);
    }
}
