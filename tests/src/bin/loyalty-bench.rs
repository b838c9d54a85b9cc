//! `loyalty-bench`: drives a running loyalty server with realistic GraphQL traffic. The logic
//! is in `loyalty_tests::bench`; this only parses the arguments, runs it and prints.
//!
//! Exit code 0: no error and the audit passed or was skipped; 1: errors or a failed audit;
//! 2: the bench could not run (bad arguments, unreachable server, setup failed).

use clap::Parser as _;
use loyalty_tests::bench::{self, BenchArgs};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = BenchArgs::parse();
    let report = match bench::run(&args, &|line| eprintln!("{line}")).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loyalty-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    match report.output(args.json) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("loyalty-bench: printing the report: {e:#}");
            return ExitCode::from(2);
        }
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
