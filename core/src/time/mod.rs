//! Time: granularities, ISO-8601 periods, interval bucketing and the window rules.
