fn main() -> std::process::ExitCode {
    copa_host::cli::main()
}
