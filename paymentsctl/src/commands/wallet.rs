//! `paymentsctl wallet block|unblock|show <seller>`: an operator's hold on a seller's wallet
//! (KYC, fraud). While a seller is blocked, a captured payment for them is not credited: the
//! checkout's saga gives it back to the buyer (the order ends REVERSED). Works on the database
//! directly, like `verify`.

use crate::cli::Globals;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use payments_domain::SellerAccount;
use payments_store::{Store, redact_url};

/// `wallet` subcommands.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Block a seller's wallet: new captures for them are given back to the buyers.
    Block(BlockArgs),
    /// Lift the block.
    Unblock(SellerArg),
    /// The seller's balances and block, if any.
    Show(SellerArg),
}

/// A seller.
#[derive(Debug, Args)]
pub struct SellerArg {
    /// The seller account.
    pub seller: String,
}

/// Arguments of `wallet block`.
#[derive(Debug, Args)]
pub struct BlockArgs {
    /// The seller account.
    pub seller: String,
    /// Why (kept with the block).
    #[arg(long)]
    pub reason: String,
}

/// Runs a `wallet` subcommand.
pub async fn run(globals: &Globals, cmd: WalletCommand) -> anyhow::Result<()> {
    let store = Store::connect(&globals.database_url)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&globals.database_url)))?;
    let result = execute(&store, cmd).await;
    store.close().await;
    result
}

async fn execute(store: &Store, cmd: WalletCommand) -> anyhow::Result<()> {
    let seller = |s: &str| SellerAccount::parse(s).with_context(|| format!("seller account {s:?}"));
    match cmd {
        WalletCommand::Block(args) => {
            if args.reason.trim().is_empty() {
                bail!("--reason must not be empty");
            }
            let account = seller(&args.seller)?;
            store.block_wallet(&account, args.reason.trim()).await?;
            println!("blocked {account}: {}", args.reason.trim());
        }
        WalletCommand::Unblock(arg) => {
            let account = seller(&arg.seller)?;
            let lifted = store.unblock_wallet(&account).await?;
            println!("{account}: {}", if lifted { "unblocked" } else { "was not blocked" });
        }
        WalletCommand::Show(arg) => {
            let account = seller(&arg.seller)?;
            for balance in store.wallet_balances(&account).await? {
                println!("{account}: {balance}");
            }
            match store.wallet_block(&account).await? {
                Some(b) => println!("{account}: BLOCKED since {} ms: {}", b.blocked_at_ms, b.reason),
                None => println!("{account}: not blocked"),
            }
        }
    }
    Ok(())
}
