//! `veil`: inspect, run and quantize models on photos.

mod inspect;
mod quantize;
mod run;
mod slice;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "veil", version, about = "Private, verifiable ML inference: inspect, run and quantize models")]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::execute(&args, cli.json),
        Command::Run(args) => run::execute(&args, cli.json),
        Command::Quantize(args) => quantize::execute(&args, cli.json),
        Command::Slice(args) => slice::execute(&args, cli.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
