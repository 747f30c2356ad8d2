//! `minke/toolbox`: a multi-call program with the small commands `kubectl exec` and
//! examples use. The applet is argv[0] (`ls`, `cat`, …) or, when run as `toolbox`,
//! the first argument: `toolbox ls /etc/config`.
//!
//! Applets: ls [-l] [-a] [PATH…], cat FILE…, echo [-n] ARG…, env, sleep SECONDS,
//! date, hostname, pwd, true, false, mkdir [-p] DIR…, write FILE TEXT…, rm [-f] FILE…, head [-n N] FILE,
//! wc FILE…, sh -c "CMD ARGS" (runs one applet; no shell syntax), loop SECONDS APPLET ARGS…,
//! and the network applets of `net.rs`: nslookup NAME, wget [-q] [-O FILE] [-T SEC] URL,
//! http-get URL; `nslookup NAME SERVER` asks SERVER over UDP (`dns.rs`).

mod dns;
mod net;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn fail(applet: &str, what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("{applet}: {what}: {e}");
    ExitCode::FAILURE
}

fn ls(args: &[String]) -> ExitCode {
    let long = args.iter().any(|a| a.starts_with('-') && a.contains('l'));
    let all = args.iter().any(|a| a.starts_with('-') && a.contains('a'));
    let mut paths: Vec<&str> = args.iter().filter(|a| !a.starts_with('-')).map(String::as_str).collect();
    if paths.is_empty() {
        paths.push(".");
    }
    let mut code = ExitCode::SUCCESS;
    let many = paths.len() > 1;
    for p in paths {
        let path = Path::new(p);
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                code = fail("ls", &format!("cannot access '{p}'"), e);
                continue;
            }
        };
        if !meta.is_dir() {
            println!("{p}");
            continue;
        }
        if many {
            println!("{p}:");
        }
        let mut names: Vec<(String, std::fs::Metadata)> = match std::fs::read_dir(path) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), e.metadata().ok()?)))
                .filter(|(n, _)| all || !n.starts_with('.'))
                .collect(),
            Err(e) => {
                code = fail("ls", &format!("cannot open directory '{p}'"), e);
                continue;
            }
        };
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, m) in names {
            if long {
                let kind = if m.is_dir() { 'd' } else if m.is_symlink() { 'l' } else { '-' };
                println!("{kind} {:>10} {name}", m.len());
            } else {
                println!("{name}");
            }
        }
    }
    code
}

fn cat(args: &[String]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut code = ExitCode::SUCCESS;
    if args.is_empty() || args == ["-"] {
        // No files: copy stdin (what `kubectl exec -i` sends).
        let mut input = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut input);
        let _ = out.write_all(&input);
        return code;
    }
    for p in args {
        match std::fs::read(p) {
            Ok(bytes) => {
                let _ = out.write_all(&bytes);
            }
            Err(e) => code = fail("cat", p, e),
        }
    }
    code
}

fn head(args: &[String]) -> ExitCode {
    let (n, files) = match args {
        [flag, n, rest @ ..] if flag == "-n" => (n.parse().unwrap_or(10), rest),
        rest => (10usize, rest),
    };
    let mut code = ExitCode::SUCCESS;
    for p in files {
        match std::fs::read_to_string(p) {
            Ok(text) => text.lines().take(n).for_each(|l| println!("{l}")),
            Err(e) => code = fail("head", p, e),
        }
    }
    code
}

fn wc(args: &[String]) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for p in args {
        match std::fs::read_to_string(p) {
            Ok(t) => println!("{} {} {} {p}", t.lines().count(), t.split_whitespace().count(), t.len()),
            Err(e) => code = fail("wc", p, e),
        }
    }
    code
}

fn date() -> ExitCode {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // Civil date from days since 1970 (proleptic Gregorian), UTC.
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    println!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
    ExitCode::SUCCESS
}

fn run(applet: &str, args: &[String]) -> ExitCode {
    match applet {
        "ls" => ls(args),
        "cat" => cat(args),
        "head" => head(args),
        "wc" => wc(args),
        "echo" => {
            let (newline, words) = match args.first().map(String::as_str) {
                Some("-n") => (false, &args[1..]),
                _ => (true, args),
            };
            print!("{}{}", words.join(" "), if newline { "\n" } else { "" });
            ExitCode::SUCCESS
        }
        "env" | "printenv" => {
            let mut vars: Vec<(String, String)> = std::env::vars().collect();
            vars.sort();
            for (k, v) in vars {
                println!("{k}={v}");
            }
            ExitCode::SUCCESS
        }
        "sleep" => {
            let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1.0);
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.max(0.0)));
            ExitCode::SUCCESS
        }
        "date" => date(),
        "hostname" => {
            println!("{}", std::env::var("HOSTNAME").unwrap_or_default());
            ExitCode::SUCCESS
        }
        "pwd" => {
            println!("{}", std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| "/".into()));
            ExitCode::SUCCESS
        }
        "nslookup" => match args.iter().filter(|a| !a.starts_with('-')).collect::<Vec<_>>()[..] {
            [name, server] => dns::nslookup_at(name, server),
            _ => net::nslookup(args),
        },
        "wget" => net::wget(args),
        "http-get" => net::http_get(args),
        "true" => ExitCode::SUCCESS,
        "false" => ExitCode::FAILURE,
        "mkdir" => {
            let parents = args.iter().any(|a| a == "-p");
            let mut code = ExitCode::SUCCESS;
            for d in args.iter().filter(|a| !a.starts_with('-')) {
                let r = if parents { std::fs::create_dir_all(d) } else { std::fs::create_dir(d) };
                if let Err(e) = r {
                    code = fail("mkdir", d, e);
                }
            }
            code
        }
        "rm" => {
            let force = args.iter().any(|a| a == "-f");
            let mut code = ExitCode::SUCCESS;
            for f in args.iter().filter(|a| !a.starts_with('-')) {
                match std::fs::remove_file(f) {
                    Err(e) if !(force && e.kind() == std::io::ErrorKind::NotFound) => code = fail("rm", f, e),
                    _ => {}
                }
            }
            code
        }
        "write" => match args.split_first() {
            Some((file, words)) => match std::fs::write(file, format!("{}\n", words.join(" "))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail("write", file, e),
            },
            None => fail("write", "usage", "write FILE TEXT..."),
        },
        "sh" => match args {
            [flag, cmd] if flag == "-c" => {
                let words: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
                match words.split_first() {
                    Some((a, rest)) => run(a, rest),
                    None => ExitCode::SUCCESS,
                }
            }
            [] => {
                // `kubectl exec -it POD -- sh`: one applet per input line.
                let mut code = ExitCode::SUCCESS;
                for line in std::io::stdin().lines().map_while(Result::ok) {
                    let words: Vec<String> =
                        line.trim_end_matches('\r').split_whitespace().map(str::to_owned).collect();
                    match words.split_first() {
                        Some((a, _)) if a == "exit" => break,
                        Some((a, rest)) => code = run(a, rest),
                        None => {}
                    }
                    let _ = std::io::stdout().flush();
                }
                code
            }
            _ => fail("sh", "usage", "sh -c \"APPLET ARGS\" or sh reading applets from stdin (no shell syntax)"),
        },
        "loop" => match args.split_first() {
            // loop SECONDS APPLET ARGS...: run the applet every SECONDS, forever.
            Some((secs, cmd)) => {
                let every = std::time::Duration::from_secs_f64(secs.parse::<f64>().unwrap_or(1.0).max(0.01));
                loop {
                    if let Some((a, rest)) = cmd.split_first() {
                        run(a, rest);
                    }
                    let _ = std::io::stdout().flush();
                    std::thread::sleep(every);
                }
            }
            None => fail("loop", "usage", "loop SECONDS APPLET ARGS..."),
        },
        "toolbox" => match args.split_first() {
            Some((a, rest)) => run(a, rest),
            None => {
                println!("toolbox applets: ls cat head wc echo env printenv sleep date hostname pwd true false mkdir write sh loop nslookup wget http-get");
                ExitCode::SUCCESS
            }
        },
        other => fail("toolbox", other, "applet not found"),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let applet = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).trim_end_matches(".wasm").to_string())
        .unwrap_or_else(|| "toolbox".into());
    run(&applet, argv.get(1..).unwrap_or(&[]))
}
