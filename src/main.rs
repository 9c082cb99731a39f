use std::process::ExitCode;

fn main() -> ExitCode {
    ferrocorn::run_command()
}
