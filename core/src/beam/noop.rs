//! A beam that sends nothing: every event is dropped with one fixed reason.

use async_trait::async_trait;

use super::{Beam, CloseError, DropReason, Outcome};
use crate::event::Event;

/// Drops every event with its reason (for example events of an interval whose tasks are gone).
#[derive(Debug, Clone, Copy)]
pub struct NoopBeam {
    reason: DropReason,
}

impl NoopBeam {
    /// A beam dropping everything with `reason`.
    pub fn new(reason: DropReason) -> Self {
        Self { reason }
    }

    /// The reason every event is dropped with.
    pub fn reason(&self) -> DropReason {
        self.reason
    }
}

#[async_trait]
impl Beam for NoopBeam {
    async fn send_batch(&self, events: Vec<Event>) -> Vec<Outcome> {
        vec![Outcome::Dropped(self.reason); events.len()]
    }

    async fn close(&self) -> Result<(), CloseError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::testing::event;

    #[tokio::test]
    async fn drops_everything_with_its_reason() {
        let beam = NoopBeam::new(DropReason::BeamDefunct);
        let outcomes = beam.send_batch(vec![event(1), event(2)]).await;
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Dropped(DropReason::BeamDefunct))));
        assert!(beam.send_batch(Vec::new()).await.is_empty());
        beam.close().await.unwrap();
    }
}
