//! Runs the sandbox bank on its own, until Ctrl-C, with the same options as
//! `kontor sandbox-bank`: `cargo run -p kontor-sandbox-bank --example serve -- --help`.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Kontor's sandbox bank (Berlin Group and UK Open Banking simulator)")]
struct Cli {
    #[command(flatten)]
    args: kontor_sandbox_bank::SandboxArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kontor_sandbox_bank::run(cli.args, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
