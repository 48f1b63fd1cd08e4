use clap::Parser;

/// mimalloc rather than glibc's malloc: the notify path allocates per request across the
/// runtime's threads, where glibc's arenas spent ~15% of the service's CPU (perf, bench on
/// Postgres); see README "Performance".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    alipay_notify::cli::Cli::parse().run().await
}
