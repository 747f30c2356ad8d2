//! `minke/hello`: prints its arguments and environment, then exits 0.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("hello from minke! args: {}", args.join(" "));
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    for (k, v) in env {
        println!("{k}={v}");
    }
}
