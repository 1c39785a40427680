//! The `autoarch` command-line tool. Glue only: [`cli`] parses arguments, wires the library's
//! pieces together, renders what they return and chooses the exit code.

// Functions fit on a screen: the threshold (100 lines) is in clippy.toml.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
