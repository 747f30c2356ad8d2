//! `minke/spinner [SECONDS]`: burns CPU (forever by default), printing progress.
fn main() {
    let limit: Option<u64> = std::env::args().nth(1).and_then(|v| v.parse().ok());
    let start = std::time::Instant::now();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut rounds: u64 = 0;
    loop {
        for _ in 0..10_000_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        rounds += 1;
        let secs = start.elapsed().as_secs();
        if rounds % 10 == 0 {
            println!("spinner: {rounds} rounds after {secs}s (state {x:x})");
        }
        if limit.is_some_and(|l| secs >= l) {
            break;
        }
    }
}
