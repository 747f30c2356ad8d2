//! `minke/hog [STEP_MIB]`: allocates and touches memory in steps until allocation
//! fails (under a memory limit the runtime then kills it as OOMKilled).
fn main() {
    let step: usize = std::env::args().nth(1).and_then(|v| v.parse().ok()).unwrap_or(4);
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(step << 20).is_err() {
            eprintln!("hog: allocation failed after {} MiB", held.len() * step);
            std::process::exit(137);
        }
        chunk.resize(step << 20, 1u8);
        held.push(chunk);
        println!("hog: holding {} MiB", held.len() * step);
    }
}
