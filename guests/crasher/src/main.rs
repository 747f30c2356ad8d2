//! `minke/crasher [EXIT_CODE] [DELAY_MS]`: prints a line, waits, exits with the code
//! (default 1 after 100 ms). `CRASHER_CODE` / `CRASHER_DELAY_MS` work too.
fn arg_or_env(i: usize, env: &str, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .or_else(|| std::env::var(env).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let code = arg_or_env(1, "CRASHER_CODE", 1);
    let delay = arg_or_env(2, "CRASHER_DELAY_MS", 100);
    println!("crasher: exiting with {code} in {delay} ms");
    std::thread::sleep(std::time::Duration::from_millis(delay));
    eprintln!("crasher: exit {code}");
    std::process::exit(i32::try_from(code).unwrap_or(1));
}
