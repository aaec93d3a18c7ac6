//! `paymentsctl`: the operator's command line for the payment platform. It runs a demo
//! checkout end to end, shows checkouts and payment orders as the gateway sees them, verifies
//! that the ledger balances and every wallet equals its ledger account, benchmarks checkout
//! throughput and latency through the gateway and Temporal, delivers operators' review
//! decisions, checkout cancellations and dead-letter retries and resolutions to the gateway's
//! gRPC AdminService, refunds captured orders, blocks or unblocks sellers' wallets, pays
//! sellers out, and reconciles the PSPs' settlement reports (`recon`).
//!
//! Layout: `cli.rs` (the clap definitions: global flags with their environment overrides and
//! the command tree), `gateway.rs` (a small REST client of the gateway: URLs, timeouts, error
//! bodies), `admin.rs` (the gRPC AdminService connection and its errors), `stats.rs`
//! (nearest-rank percentiles, pure), and one file per command under `commands/` (`demo`,
//! `checkout`, `payment`, `verify`, `bench`, `review`, `dlq`, `refund`, `wallet`, `keys`,
//! `fees`, `payouts`, `recon` with its printing in `recon_view`), mini-redis style.
//! `main.rs` only parses the flags and calls [`run`].
//!
//! Money is never a float here: amounts travel as the gateway's decimal strings, or as the
//! store's integer minor units, and are printed as such.

pub mod admin;
pub mod cli;
pub mod commands;
pub mod gateway;
pub mod stats;

pub use cli::{Cli, Command, Globals};

/// Runs one parsed command line. An `Err` means the command failed and the process should
/// exit non-zero; its message is meant for the operator.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let globals = cli.globals;
    match cli.command {
        Command::Demo(args) => commands::demo::run(&globals, args).await,
        Command::Checkout(cmd) => commands::checkout::run(&globals, cmd).await,
        Command::Payment(cmd) => commands::payment::run(&globals, cmd).await,
        Command::Verify(args) => commands::verify::run(&globals, args).await,
        Command::Bench(args) => commands::bench::run(&globals, args).await,
        Command::BenchPayouts(args) => commands::bench_payouts::run(&globals, args).await,
        Command::BenchRecon(args) => commands::bench_recon::run(&globals, args).await,
        Command::Review(cmd) => commands::review::run(&globals, cmd).await,
        Command::Dlq(cmd) => commands::dlq::run(&globals, cmd).await,
        Command::Refund(cmd) => commands::refund::run(&globals, cmd).await,
        Command::Wallet(cmd) => commands::wallet::run(&globals, cmd).await,
        Command::Keys(cmd) => commands::keys::run(&globals, cmd).await,
        Command::Db(cmd) => commands::db::run(&globals, cmd).await,
        Command::Fees(cmd) => commands::fees::run(&globals, cmd).await,
        Command::Balance(cmd) => commands::payouts::balance(&globals, cmd).await,
        Command::Seller(cmd) => commands::payouts::seller(&globals, cmd).await,
        Command::Payout(cmd) => commands::payouts::payout(&globals, cmd).await,
        Command::Recon(cmd) => commands::recon::command(&globals, cmd).await,
    }
}
