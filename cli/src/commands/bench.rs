//! `tranquility bench`: the benchmark run (speed and memory against their limits), from the
//! `tranquility-bench` library.

/// Arguments of `tranquility bench`.
pub type Args = tranquility_bench::cli::Args;

/// Runs the benchmark; its druid-local children are started as `tranquility bench`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    tranquility_bench::cli::main(args, &["bench"]).await
}
