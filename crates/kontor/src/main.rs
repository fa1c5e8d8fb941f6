//! `kontor`: the one binary of the hub. See `kontor --help`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use kontor::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS provider for every outgoing connection (banks, webhooks): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::Error::from(err).context("starting the async runtime")),
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// The reason goes to stderr, with its chain of causes, and the exit code is 1.
fn fail(err: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {err:#}");
    ExitCode::FAILURE
}
