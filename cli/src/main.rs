//! `veil`: inspect, run, quantize and compile models; prove what they say about a photo and verify proofs.

mod bench;
mod compile;
mod inspect;
mod keys;
mod params;
mod platform;
mod progress;
mod prove;
mod quantize;
mod run;
mod slice;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "veil", version, about = "Private, verifiable ML inference: inspect, run, compile, prove and verify")]
struct Cli {
    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a model's layers with shapes, parameters and multiply-accumulates.
    Inspect(inspect::Args),
    /// Run a model on an image, in float or with the quantized integer reference.
    Run(run::Args),
    /// Calibrate and quantize a model, write the artifact and print the accuracy report.
    Quantize(quantize::Args),
    /// Print how the quantized model splits into slices for proving: layers, estimated rows, k, memory.
    Slice(slice::Args),
    /// Quantize, slice and key a model: write the compiled model and its verifying artifact (.vk).
    Compile(compile::Args),
    /// Derive every slice's proving key into the key cache, so proofs skip deriving them.
    Keys(keys::Args),
    /// Prove a claim about what a compiled model says on a photo; write the proof bundle.
    Prove(prove::Args),
    /// Verify a proof bundle (exit status 0 accepted, 1 rejected, 2 not checked).
    Verify(verify::Args),
    /// Prove and verify once or more and report sizes, times and peak memory.
    Bench(bench::Args),
}

/// Exit status of `veil verify` when the bundle was rejected.
const REJECTED: u8 = 1;
/// Exit status of `veil verify` when the bundle could not be checked (the same as clap's usage errors).
const NOT_CHECKED: u8 = 2;

fn main() -> ExitCode {
    platform::quiet_on_closed_pipe();
    let cli = Cli::parse();
    let mut failure = ExitCode::FAILURE;
    let result = match cli.command {
        Command::Inspect(args) => inspect::execute(&args, cli.json),
        Command::Run(args) => run::execute(&args, cli.json),
        Command::Quantize(args) => quantize::execute(&args, cli.json),
        Command::Slice(args) => slice::execute(&args, cli.json),
        Command::Compile(args) => {
            platform::return_large_blocks();
            compile::execute(&args, cli.json)
        }
        Command::Keys(args) => {
            platform::return_large_blocks();
            keys::execute(&args, cli.json)
        }
        Command::Prove(args) => {
            platform::return_large_blocks();
            prove::execute(&args, cli.json)
        }
        Command::Bench(args) => {
            platform::return_large_blocks();
            bench::execute(&args, cli.json)
        }
        Command::Verify(args) => {
            failure = ExitCode::from(NOT_CHECKED);
            match verify::execute(&args, cli.json) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::from(REJECTED),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            }
            eprintln!("error: {e:#}");
            failure
        }
    }
}
