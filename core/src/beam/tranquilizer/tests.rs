use std::time::Duration;

use futures::poll;

use super::*;
use crate::beam::testing::{event, marked, number, FailableBeam, MemoryBeam};

fn config(batch: usize, pending: usize, linger_millis: i64, block: bool) -> TranquilizerConfig {
    TranquilizerConfig::builder()
        .max_batch_size(batch)
        .max_pending_batches(pending)
        .linger_millis(linger_millis)
        .block_on_full(block)
        .build()
        .unwrap()
}

/// Every event handed in is sent, dropped, failed or still pending.
fn assert_accounted(stats: &TranquilizerStats) {
    assert_eq!(
        stats.tally.received,
        stats.tally.sent + stats.tally.dropped_total() + stats.tally.failed + stats.pending_events,
        "{stats:?}"
    );
}

async fn until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::task::yield_now().await;
    }
}

fn kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Sent => "sent",
        Outcome::Dropped(_) => "dropped",
        Outcome::Failed(_) => "failed",
    }
}

#[tokio::test]
async fn a_single_event_goes_at_once_with_linger_zero() {
    let beam = MemoryBeam::new();
    let t = Tranquilizer::new(beam.clone(), TranquilizerConfig::default());
    let outcome = t.send(event(1)).await;
    assert!(outcome.await.is_sent());
    assert_eq!(beam.batch_sizes(), vec![1]);
    let stats = t.stats();
    assert_eq!(
        (stats.tally.received, stats.tally.sent, stats.batches),
        (1, 1, 1)
    );
    assert_eq!(stats.pending_events, 0);
    assert_accounted(&stats);
}

#[tokio::test]
async fn batches_grow_under_load_and_never_exceed_max_batch_size() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(4, 2, 0, true));
    let mut outcomes = Vec::new();
    // Two events go one by one and take both slots; the next four fill the buffer.
    for n in 0..6 {
        outcomes.push(t.send(event(n)).await);
    }
    until(|| beam.in_flight() == 2).await;
    assert_eq!(t.stats().pending_events, 6);
    beam.release();
    for outcome in outcomes {
        assert!(outcome.await.is_sent());
    }
    assert_eq!(beam.batch_sizes(), vec![1, 1, 4]);
    let mut sent: Vec<u64> = beam.sent().iter().filter_map(number).collect();
    sent.sort_unstable();
    assert_eq!(sent, (0..6).collect::<Vec<_>>());
    assert_accounted(&t.stats());
}

#[tokio::test]
async fn full_buffer_with_every_slot_taken_refuses_when_not_blocking() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(3, 1, 0, false));
    let first = t.send(event(0)).await; // takes the only slot
    let buffered = [
        t.send(event(1)).await,
        t.send(event(2)).await,
        t.send(event(3)).await,
    ];
    let refused = t.send(event(4)).await;
    assert!(refused.is_ready(), "refusal is immediate");
    match refused.await {
        Outcome::Failed(error) => assert!(matches!(
            error.as_ref(),
            SendError::BufferFull { pending_batches: 1 }
        )),
        other => panic!("expected BufferFull, got {other:?}"),
    }
    let stats = t.stats();
    assert_eq!(
        (stats.tally.failed, stats.buffer_full, stats.pending_events),
        (1, 1, 4)
    );
    assert_accounted(&stats);
    beam.release();
    assert!(first.await.is_sent());
    for outcome in buffered {
        assert!(outcome.await.is_sent());
    }
    assert_eq!(beam.batch_sizes(), vec![1, 3]);
    let stats = t.stats();
    assert_eq!(
        (stats.tally.received, stats.tally.sent, stats.tally.failed),
        (5, 4, 1)
    );
    assert_accounted(&stats);
}

#[tokio::test]
async fn try_send_never_waits_even_when_blocking_is_configured() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(1, 1, 0, true));
    let first = t.try_send(event(0));
    let second = t.try_send(event(1)); // fills the buffer of one
    let third = t.try_send(event(2));
    assert!(third.await.is_failed());
    beam.release();
    assert!(first.await.is_sent());
    assert!(second.await.is_sent());
}

#[tokio::test]
async fn blocking_send_waits_for_room() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(2, 1, 0, true));
    let a = t.send(event(0)).await;
    let b = t.send(event(1)).await;
    let c = t.send(event(2)).await;
    let mut blocked = Box::pin(t.send(event(3)));
    assert!(poll!(&mut blocked).is_pending(), "no room: send waits");
    assert_eq!(
        t.stats().tally.received,
        3,
        "a waiting event is not handed in yet"
    );
    beam.release();
    let d = blocked.await;
    for outcome in [a, b, c, d] {
        assert!(outcome.await.is_sent());
    }
    assert_eq!(beam.batch_sizes(), vec![1, 2, 1]);
    assert_accounted(&t.stats());
}

#[tokio::test(start_paused = true)]
async fn pending_batches_never_exceed_the_limit() {
    let beam = FailableBeam::new().with_delay(Duration::from_millis(10));
    let t = Tranquilizer::new(beam.clone(), config(5, 3, 0, true));
    let outcomes = t.send_all((0..100).map(event).collect()).await.await;
    assert_eq!(outcomes.len(), 100);
    assert!(outcomes.iter().all(Outcome::is_sent));
    assert_eq!(beam.max_in_flight(), 3);
    assert!(beam.batch_sizes().iter().all(|s| *s <= 5));
    assert_accounted(&t.stats());
}

#[tokio::test(start_paused = true)]
async fn linger_waits_for_the_batch_to_fill() {
    let beam = MemoryBeam::new();
    let t = Tranquilizer::new(beam.clone(), config(100, 5, 50, true));
    let start = Instant::now();
    let first = t.send(event(0)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = t.send(event(1)).await;
    tokio::time::sleep(Duration::from_millis(29)).await;
    assert!(
        beam.batch_sizes().is_empty(),
        "nothing goes before the linger"
    );
    assert!(!first.is_ready());
    assert!(first.await.is_sent());
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(50),
        "linger counts from the first event"
    );
    assert!(second.await.is_sent());
    assert_eq!(beam.batch_sizes(), vec![2]);

    // The next batch lingers from its own first event.
    let third = t.send(event(2)).await;
    let sent_at = Instant::now();
    assert!(third.await.is_sent());
    assert_eq!(sent_at.elapsed(), Duration::from_millis(50));
    assert_eq!(beam.batch_sizes(), vec![2, 1]);
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_does_not_linger() {
    let beam = MemoryBeam::new();
    let t = Tranquilizer::new(beam.clone(), config(3, 5, 10_000, true));
    let start = Instant::now();
    let outcomes = t.send_all((0..3).map(event).collect()).await.await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(beam.batch_sizes(), vec![3]);
}

#[tokio::test(start_paused = true)]
async fn expired_linger_with_no_free_slot_goes_when_a_slot_frees() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(10, 1, 5, true));
    let first = t.send(event(0)).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    until(|| beam.in_flight() == 1).await;
    let second = t.send(event(1)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(beam.batch_sizes(), vec![1], "the slot is taken");
    beam.release();
    assert!(first.await.is_sent());
    assert!(second.await.is_sent());
    assert_eq!(beam.batch_sizes(), vec![1, 1]);
}

#[tokio::test(start_paused = true)]
async fn negative_linger_sends_only_full_batches_or_on_flush() {
    let beam = MemoryBeam::new();
    let t = Tranquilizer::new(beam.clone(), config(4, 5, -1, true));
    let outcomes = t.send_all((0..10).map(event).collect()).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(beam.batch_sizes(), vec![4, 4]);
    assert_eq!(t.stats().pending_events, 2);
    t.flush().await;
    assert_eq!(beam.batch_sizes(), vec![4, 4, 2]);
    assert!(outcomes.await.iter().all(Outcome::is_sent));
    assert_accounted(&t.stats());
}

#[tokio::test]
async fn flush_waits_for_every_event_handed_in_before_it() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(10, 2, -1, true));
    let outcomes: Vec<OutcomeFuture> = vec![t.send(event(0)).await, t.send(event(1)).await];
    let mut flush = Box::pin(t.flush());
    assert!(poll!(&mut flush).is_pending(), "the beam holds the batch");
    until(|| beam.in_flight() == 1).await;
    assert_eq!(beam.batch_sizes(), vec![2], "flush sent the buffer at once");
    beam.release();
    flush.await;
    assert!(outcomes.iter().all(OutcomeFuture::is_ready));
    for outcome in outcomes {
        assert!(outcome.await.is_sent());
    }
    // Flushing an empty Tranquilizer returns at once.
    t.flush().await;
}

#[tokio::test]
async fn flush_waits_for_batches_already_in_flight() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(10, 2, 0, true));
    let outcome = t.send(event(0)).await;
    until(|| beam.in_flight() == 1).await;
    let mut flush = Box::pin(t.flush());
    assert!(poll!(&mut flush).is_pending());
    beam.release();
    flush.await;
    assert!(outcome.is_ready());
}

#[tokio::test]
async fn close_drains_everything_then_closes_the_beam() {
    let beam = FailableBeam::new();
    let t = Tranquilizer::new(beam.clone(), config(3, 1, -1, true));
    let outcomes = t.send_all((0..7).map(event).collect()).await;
    t.close().await.unwrap();
    assert_eq!(beam.close_count(), 1);
    assert_eq!(beam.batch_sizes(), vec![3, 3, 1]);
    assert!(outcomes.await.iter().all(Outcome::is_sent));
    let stats = t.stats();
    assert_eq!(
        (stats.tally.received, stats.tally.sent, stats.pending_events),
        (7, 7, 0)
    );

    let late = t.send(event(99)).await;
    assert!(matches!(
        late.await,
        Outcome::Dropped(DropReason::BeamClosed)
    ));
    let late_many = t.send_all(vec![event(100), event(101)]).await.await;
    assert!(late_many
        .iter()
        .all(|o| matches!(o, Outcome::Dropped(DropReason::BeamClosed))));
    let stats = t.stats();
    assert_eq!(stats.tally.dropped(DropReason::BeamClosed), 3);
    assert_accounted(&stats);

    // Closing again gives the same answer without closing the beam twice.
    t.close().await.unwrap();
    assert_eq!(beam.close_count(), 1);
}

#[tokio::test]
async fn close_waits_for_held_batches_and_reports_the_beams_error() {
    let beam = FailableBeam::new().fail_close("tasks are gone");
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(10, 1, 0, true));
    let outcome = t.send(event(0)).await;
    let mut close = Box::pin(t.close());
    assert!(poll!(&mut close).is_pending());
    assert_eq!(
        beam.close_count(),
        0,
        "the beam closes only after the drain"
    );
    beam.release();
    let error = close.await.unwrap_err();
    assert_eq!(error.0, "tasks are gone");
    assert!(outcome.await.is_sent());
    assert_eq!(t.close().await.unwrap_err().0, "tasks are gone");
    assert_eq!(beam.close_count(), 1);
}

#[tokio::test]
async fn close_answers_senders_waiting_for_room() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Arc::new(Tranquilizer::new(beam.clone(), config(1, 1, 0, true)));
    let in_flight = t.send(event(0)).await;
    let buffered = t.send(event(1)).await;
    let waiting = tokio::spawn({
        let t = Arc::clone(&t);
        async move { t.send(event(2)).await.await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    let closing = tokio::spawn({
        let t = Arc::clone(&t);
        async move { t.close().await }
    });
    let waited = waiting.await.unwrap();
    assert!(matches!(waited, Outcome::Dropped(DropReason::BeamClosed)));
    beam.release();
    closing.await.unwrap().unwrap();
    assert!(in_flight.await.is_sent());
    assert!(buffered.await.is_sent());
    let stats = t.stats();
    assert_eq!((stats.tally.received, stats.tally.sent), (3, 2));
    assert_accounted(&stats);
}

#[tokio::test]
async fn dropping_the_tranquilizer_still_answers_every_event() {
    let beam = FailableBeam::new();
    let t = Tranquilizer::new(beam.clone(), config(100, 1, -1, true));
    let outcomes = t.send_all((0..5).map(event).collect()).await;
    drop(t);
    assert!(outcomes.await.iter().all(Outcome::is_sent));
    until(|| beam.close_count() == 1).await;
}

#[test]
fn a_stopped_runtime_still_answers_every_event() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let beam = FailableBeam::new();
    beam.hold();
    let (t, in_flight, buffered) = runtime.block_on(async {
        let t = Tranquilizer::new(beam.clone(), config(10, 1, 0, true));
        let in_flight = t.send(event(0)).await;
        until(|| beam.in_flight() == 1).await;
        let buffered = t.send(event(1)).await;
        (t, in_flight, buffered)
    });
    drop(runtime);
    for outcome in [in_flight, buffered] {
        let outcome = futures::executor::block_on(outcome);
        assert!(
            matches!(&outcome, Outcome::Failed(e) if e.to_string().contains("runtime stopped")),
            "{outcome:?}"
        );
    }
    assert_accounted(&t.stats());
    drop(t);
}

#[tokio::test]
async fn outcomes_come_back_in_input_order() {
    let beam = FailableBeam::by_mark();
    let t = Tranquilizer::new(beam.clone(), config(3, 2, 0, true));
    let marks = [
        "", "fail", "drop", "", "", "fail", "drop", "drop", "", "fail", "", "",
    ];
    let events: Vec<Event> = marks
        .iter()
        .enumerate()
        .map(|(n, m)| {
            if m.is_empty() {
                event(n as u64)
            } else {
                marked(n as u64, m)
            }
        })
        .collect();
    let expected: Vec<&str> = marks
        .iter()
        .map(|m| match *m {
            "fail" => "failed",
            "drop" => "dropped",
            _ => "sent",
        })
        .collect();

    let bulk = t.send_all(events.clone()).await.await;
    assert_eq!(bulk.iter().map(kind).collect::<Vec<_>>(), expected);

    let mut singles = Vec::new();
    for e in events {
        singles.push(t.send(e).await);
    }
    let mut got = Vec::new();
    for outcome in singles {
        got.push(kind(&outcome.await));
    }
    assert_eq!(got, expected);

    let stats = t.stats();
    assert_eq!(stats.tally.dropped(DropReason::OutsideWindow), 6);
    assert_eq!(stats.tally.failed, 6);
    assert_eq!(stats.tally.sent, 12);
    assert_accounted(&stats);
}

#[tokio::test]
async fn bulk_overflow_refuses_the_rest_in_order() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(2, 1, -1, false));
    // 2 go out as a full batch, 2 fill the buffer, the last 3 are refused.
    let outcomes = t.send_all((0..7).map(event).collect()).await;
    assert_eq!(outcomes.len(), 7);
    beam.release();
    let outcomes = outcomes.await;
    assert_eq!(
        outcomes.iter().map(kind).collect::<Vec<_>>(),
        ["sent", "sent", "sent", "sent", "failed", "failed", "failed"]
    );
    assert_eq!(beam.batch_sizes(), vec![2, 2]);
    assert_eq!(t.stats().buffer_full, 3);
    assert_accounted(&t.stats());
}

#[tokio::test]
async fn bulk_hand_over_larger_than_all_capacity_blocks_until_it_fits() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(5, 2, 0, true));
    let mut handing = Box::pin(t.send_all((0..40).map(event).collect()));
    assert!(poll!(&mut handing).is_pending());
    beam.release();
    let outcomes = handing.await.await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    let sent: Vec<u64> = beam.sent().iter().filter_map(number).collect();
    let mut sorted = sent.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..40).collect::<Vec<_>>());
    assert!(beam.batch_sizes().iter().all(|s| *s <= 5));
}

#[tokio::test]
async fn a_panicking_beam_fails_its_batch_only() {
    let beam = FailableBeam::new().panic_if(|e| number(e) == Some(1));
    let t = Tranquilizer::new(beam.clone(), config(10, 1, 0, true));
    let bad = t.send_all(vec![event(1), event(2)]).await.await;
    for outcome in &bad {
        assert!(
            matches!(outcome, Outcome::Failed(e) if e.to_string().contains("panicked")),
            "{outcome:?}"
        );
    }
    assert!(t.send(event(3)).await.await.is_sent());
    assert_accounted(&t.stats());
}

#[tokio::test]
async fn a_beam_answering_too_few_outcomes_fails_the_missing_ones() {
    let beam = FailableBeam::new().answer_short();
    let t = Tranquilizer::new(beam, config(10, 1, 0, true));
    let outcomes = t.send_all(vec![event(1), event(2), event(3)]).await.await;
    assert_eq!(
        outcomes.iter().map(kind).collect::<Vec<_>>(),
        ["sent", "sent", "failed"]
    );
    let stats = t.stats();
    assert_eq!((stats.tally.sent, stats.tally.failed), (2, 1));
    assert_accounted(&stats);
}

#[tokio::test]
async fn a_tranquilizer_is_a_beam() {
    let memory = MemoryBeam::new();
    let beam: Arc<dyn Beam> = Arc::new(Tranquilizer::new(memory.clone(), config(2, 1, -1, true)));
    let outcomes = beam.send_batch((0..5).map(event).collect()).await;
    assert!(outcomes.iter().all(Outcome::is_sent));
    assert_eq!(memory.batch_sizes().iter().sum::<usize>(), 5);
    beam.close().await.unwrap();
    assert!(memory.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_senders_lose_nothing() {
    let memory = MemoryBeam::new();
    let t = Arc::new(Tranquilizer::new(memory.clone(), config(64, 3, 0, true)));
    let mut tasks = Vec::new();
    for producer in 0..8u64 {
        let t = Arc::clone(&t);
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..500 {
                let n = producer * 10_000 + i;
                if i % 2 == 0 {
                    outcomes.push(t.send(event(n)).await);
                } else {
                    let mut many = t.send_all(vec![event(n + 5_000)]).await.await;
                    assert!(many.pop().is_some_and(|o| o.is_sent()));
                }
            }
            for outcome in outcomes {
                assert!(outcome.await.is_sent());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    t.close().await.unwrap();
    assert_eq!(memory.events().len(), 4000);
    let stats = t.stats();
    assert_eq!((stats.tally.received, stats.tally.sent), (4000, 4000));
    assert_accounted(&stats);
}

#[tokio::test]
async fn a_whole_batch_is_neither_split_nor_merged_and_waits_for_a_slot() {
    let beam = FailableBeam::new();
    beam.hold();
    let t = Tranquilizer::new(beam.clone(), config(4, 1, -1, false));
    // Single events wait in the buffer (linger until full); the whole batch goes by itself,
    // larger than maxBatchSize.
    let single = t.send(event(100)).await;
    let whole = t.send_whole((0..6).map(event).collect()).await;
    until(|| beam.in_flight() == 1).await;
    // The only slot is taken: the next whole batch waits (whatever blockOnFull says).
    let waiting = t.send_whole((6..8).map(event).collect());
    tokio::pin!(waiting);
    assert!(poll!(waiting.as_mut()).is_pending());
    assert_eq!(t.stats().pending_events, 7);
    beam.release();
    let outcomes = whole.await;
    assert_eq!(outcomes.len(), 6);
    assert!(outcomes.iter().all(Outcome::is_sent));
    let second = waiting.await.await;
    assert!(second.iter().all(Outcome::is_sent));
    t.flush().await;
    assert!(single.await.is_sent());
    let batches: Vec<Vec<u64>> = beam
        .batches()
        .iter()
        .map(|b| b.iter().filter_map(number).collect())
        .collect();
    assert_eq!(batches, vec![vec![0, 1, 2, 3, 4, 5], vec![6, 7], vec![100]]);
    let stats = t.stats();
    assert_eq!(
        (stats.tally.received, stats.tally.sent, stats.batches),
        (9, 9, 3)
    );
    assert_accounted(&stats);

    t.close().await.unwrap();
    let late = t.send_whole(vec![event(9)]).await.await;
    assert!(matches!(
        late[..],
        [Outcome::Dropped(DropReason::BeamClosed)]
    ));
    assert!(t.send_whole(Vec::new()).await.await.is_empty());
    assert_accounted(&t.stats());
}
