//! Tranquilizer options, named after the original `druid.tranquilizer.*` properties.

use std::time::Duration;

/// How long a non-full batch waits for more events (`druid.tranquilizer.lingerMillis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// `lingerMillis = 0`: send as soon as a pending slot is free; batches grow only under load.
    Immediate,
    /// `lingerMillis > 0`: wait this long after a batch's first event for the batch to fill.
    For(Duration),
    /// `lingerMillis < 0`: send only full batches, or on `flush`/`close`.
    UntilFull,
}

impl Linger {
    /// The linger from the original property value in milliseconds (0, > 0 or < 0).
    pub fn from_millis(millis: i64) -> Self {
        match millis {
            0 => Linger::Immediate,
            m if m < 0 => Linger::UntilFull,
            m => Linger::For(Duration::from_millis(m.unsigned_abs())),
        }
    }

    /// The property value in milliseconds: 0, the duration, or -1.
    pub fn as_millis(&self) -> i64 {
        match self {
            Linger::Immediate => 0,
            Linger::For(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Linger::UntilFull => -1,
        }
    }
}

/// Invalid Tranquilizer options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranquilizerConfigError {
    /// `druid.tranquilizer.maxBatchSize` must be at least 1.
    #[error("druid.tranquilizer.maxBatchSize must be at least 1, got {0}")]
    MaxBatchSize(usize),
    /// `druid.tranquilizer.maxPendingBatches` must be at least 1.
    #[error("druid.tranquilizer.maxPendingBatches must be at least 1, got {0}")]
    MaxPendingBatches(usize),
}

/// Batching options of a [`Tranquilizer`](super::Tranquilizer). Build with
/// [`TranquilizerConfig::builder`]; `Default` gives the original defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranquilizerConfig {
    max_batch_size: usize,
    max_pending_batches: usize,
    linger: Linger,
    block_on_full: bool,
}

impl TranquilizerConfig {
    /// Property key of [`max_batch_size`](Self::max_batch_size).
    pub const MAX_BATCH_SIZE: &'static str = "druid.tranquilizer.maxBatchSize";
    /// Property key of [`max_pending_batches`](Self::max_pending_batches).
    pub const MAX_PENDING_BATCHES: &'static str = "druid.tranquilizer.maxPendingBatches";
    /// Property key of [`linger`](Self::linger).
    pub const LINGER_MILLIS: &'static str = "druid.tranquilizer.lingerMillis";
    /// Property key of [`block_on_full`](Self::block_on_full).
    pub const BLOCK_ON_FULL: &'static str = "druid.tranquilizer.blockOnFull";

    /// Default `maxBatchSize`.
    pub const DEFAULT_MAX_BATCH_SIZE: usize = 2000;
    /// Default `maxPendingBatches`.
    pub const DEFAULT_MAX_PENDING_BATCHES: usize = 5;
    /// Default `lingerMillis`.
    pub const DEFAULT_LINGER_MILLIS: i64 = 0;
    /// Default `blockOnFull`.
    pub const DEFAULT_BLOCK_ON_FULL: bool = true;

    /// A builder starting from the defaults.
    pub fn builder() -> TranquilizerConfigBuilder {
        TranquilizerConfigBuilder {
            config: TranquilizerConfig::default(),
        }
    }

    /// Most events per batch handed to the beam (`maxBatchSize`). Default 2000.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Most batches handed to the beam and not yet answered (`maxPendingBatches`). Default 5.
    pub fn max_pending_batches(&self) -> usize {
        self.max_pending_batches
    }

    /// How long a non-full batch waits for more events (`lingerMillis`). Default 0: immediate.
    pub fn linger(&self) -> Linger {
        self.linger
    }

    /// Whether `send` waits for room when the buffer is full (`blockOnFull`). Default true;
    /// when false a full buffer answers `Failed(BufferFull)` at once.
    pub fn block_on_full(&self) -> bool {
        self.block_on_full
    }
}

impl Default for TranquilizerConfig {
    fn default() -> Self {
        Self {
            max_batch_size: Self::DEFAULT_MAX_BATCH_SIZE,
            max_pending_batches: Self::DEFAULT_MAX_PENDING_BATCHES,
            linger: Linger::from_millis(Self::DEFAULT_LINGER_MILLIS),
            block_on_full: Self::DEFAULT_BLOCK_ON_FULL,
        }
    }
}

/// Builds a validated [`TranquilizerConfig`].
#[derive(Debug, Clone)]
pub struct TranquilizerConfigBuilder {
    config: TranquilizerConfig,
}

impl TranquilizerConfigBuilder {
    /// Sets `druid.tranquilizer.maxBatchSize` (at least 1; default 2000).
    pub fn max_batch_size(mut self, events: usize) -> Self {
        self.config.max_batch_size = events;
        self
    }

    /// Sets `druid.tranquilizer.maxPendingBatches` (at least 1; default 5).
    pub fn max_pending_batches(mut self, batches: usize) -> Self {
        self.config.max_pending_batches = batches;
        self
    }

    /// Sets `druid.tranquilizer.lingerMillis` as the original number (default 0).
    pub fn linger_millis(mut self, millis: i64) -> Self {
        self.config.linger = Linger::from_millis(millis);
        self
    }

    /// Sets the linger directly.
    pub fn linger(mut self, linger: Linger) -> Self {
        self.config.linger = linger;
        self
    }

    /// Sets `druid.tranquilizer.blockOnFull` (default true).
    pub fn block_on_full(mut self, block: bool) -> Self {
        self.config.block_on_full = block;
        self
    }

    /// Checks the options and returns the config.
    pub fn build(self) -> Result<TranquilizerConfig, TranquilizerConfigError> {
        let c = self.config;
        if c.max_batch_size == 0 {
            return Err(TranquilizerConfigError::MaxBatchSize(c.max_batch_size));
        }
        if c.max_pending_batches == 0 {
            return Err(TranquilizerConfigError::MaxPendingBatches(
                c.max_pending_batches,
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals() {
        let c = TranquilizerConfig::default();
        assert_eq!(c.max_batch_size(), 2000);
        assert_eq!(c.max_pending_batches(), 5);
        assert_eq!(c.linger(), Linger::Immediate);
        assert!(c.block_on_full());
        assert_eq!(TranquilizerConfig::builder().build(), Ok(c));
    }

    #[test]
    fn linger_follows_the_sign_of_the_millis() {
        assert_eq!(Linger::from_millis(0), Linger::Immediate);
        assert_eq!(Linger::from_millis(-1), Linger::UntilFull);
        assert_eq!(Linger::from_millis(-500), Linger::UntilFull);
        assert_eq!(
            Linger::from_millis(250),
            Linger::For(Duration::from_millis(250))
        );
        for m in [0, 250, -1] {
            assert_eq!(Linger::from_millis(m).as_millis(), m);
        }
    }

    #[test]
    fn zero_sizes_are_refused_with_the_property_name() {
        let err = TranquilizerConfig::builder()
            .max_batch_size(0)
            .build()
            .unwrap_err();
        assert_eq!(err, TranquilizerConfigError::MaxBatchSize(0));
        assert!(err.to_string().contains("druid.tranquilizer.maxBatchSize"));
        let err = TranquilizerConfig::builder()
            .max_pending_batches(0)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("maxPendingBatches"));
    }

    #[test]
    fn builder_sets_every_field() {
        let c = TranquilizerConfig::builder()
            .max_batch_size(7)
            .max_pending_batches(3)
            .linger_millis(40)
            .block_on_full(false)
            .build()
            .unwrap();
        assert_eq!(c.max_batch_size(), 7);
        assert_eq!(c.max_pending_batches(), 3);
        assert_eq!(c.linger(), Linger::For(Duration::from_millis(40)));
        assert!(!c.block_on_full());
    }
}
