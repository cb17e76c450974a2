fn main() -> std::process::ExitCode {
    shipmate::main(std::env::args_os())
}
