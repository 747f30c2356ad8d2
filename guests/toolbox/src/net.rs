//! The network applets: `nslookup` (wasi:sockets ip-name-lookup) and `wget` /
//! `http-get` (wasi:http outgoing-handler through wstd), worded like busybox's so
//! scripts and tests written against busybox images read the same here.

use std::io::Write;
use std::process::ExitCode;

use wasip2::sockets::ip_name_lookup::{self, ErrorCode as LookupError};
use wasip2::sockets::network::IpAddress;
use wstd::http::body::HttpBody;
use wstd::http::error::ErrorCode as HttpError;
use wstd::http::{Body, Client, Request, Response, StatusCode, Uri};

/// Redirects `wget` follows before giving up, as busybox does.
const MAX_REDIRECTS: usize = 5;

fn fail(applet: &str, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{applet}: {msg}");
    ExitCode::FAILURE
}

/// The nameserver named in /etc/resolv.conf, for the `Server:` line; names are
/// resolved by the host (ip-name-lookup), so it is only informational.
fn nameserver() -> Option<String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    conf.lines().find_map(|l| l.strip_prefix("nameserver").map(|s| s.trim().to_owned()))
}

fn format_ip(ip: IpAddress) -> String {
    match ip {
        IpAddress::Ipv4((a, b, c, d)) => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).to_string(),
    }
}

/// busybox's answer to a failed lookup, from the resolver's error.
fn lookup_failure(name: &str, e: LookupError) -> String {
    let why = match e {
        LookupError::NameUnresolvable => "NXDOMAIN",
        LookupError::TemporaryResolverFailure | LookupError::PermanentResolverFailure => "SERVFAIL",
        LookupError::InvalidArgument => "bad name",
        other => other.name(),
    };
    format!("** server can't find {name}: {why}")
}

/// All addresses of `name`, in the resolver's order.
fn resolve(name: &str) -> Result<Vec<IpAddress>, LookupError> {
    let network = wasip2::sockets::instance_network::instance_network();
    let stream = ip_name_lookup::resolve_addresses(&network, name)?;
    let mut addrs = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(ip)) => addrs.push(ip),
            Ok(None) => return Ok(addrs),
            Err(LookupError::WouldBlock) => stream.subscribe().block(),
            Err(e) => return Err(e),
        }
    }
}

/// `nslookup NAME`: prints `Server:`, then `Name:` and one `Address:` per address.
pub(crate) fn nslookup(args: &[String]) -> ExitCode {
    let Some(name) = args.iter().find(|a| !a.starts_with('-')) else {
        return fail("nslookup", "usage: nslookup NAME");
    };
    let server = nameserver();
    println!("Server:\t\t{}", server.as_deref().unwrap_or("wasi:sockets/ip-name-lookup"));
    if let Some(s) = &server {
        println!("Address:\t{s}:53");
    }
    println!();
    match resolve(name) {
        Ok(addrs) if !addrs.is_empty() => {
            println!("Name:\t{name}");
            for ip in addrs {
                println!("Address: {}", format_ip(ip));
            }
            ExitCode::SUCCESS
        }
        Ok(_) => {
            println!("{}", lookup_failure(name, LookupError::NameUnresolvable));
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("{}", lookup_failure(name, e));
            ExitCode::FAILURE
        }
    }
}

/// A parsed `wget` command line.
#[derive(Debug, PartialEq)]
struct Wget {
    quiet: bool,
    /// `-O FILE`; `-` is stdout; `None` names the file after the URL.
    output: Option<String>,
    /// `-T SECONDS`: connect, first-byte and between-bytes timeout.
    timeout: Option<f64>,
    url: String,
}

/// Parses `wget [-q] [-O FILE] [-T SEC] URL`, short flags bundled (`-qO-`) or not.
fn parse_wget(args: &[String]) -> Result<Wget, String> {
    let (mut quiet, mut output, mut timeout, mut urls) = (false, None, None, Vec::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(long) = arg.strip_prefix("--") {
            let (flag, inline) = match long.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (long, None),
            };
            let value = |it: &mut std::slice::Iter<String>| {
                inline.clone().or_else(|| it.next().cloned()).ok_or(format!("option '--{flag}' requires an argument"))
            };
            match flag {
                "" => urls.extend(it.by_ref().cloned()),
                "quiet" => quiet = true,
                "output-document" => output = Some(value(&mut it)?),
                "timeout" => timeout = Some(value(&mut it)?),
                _ => return Err(format!("unrecognized option '--{flag}'")),
            }
            continue;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            urls.push(arg.clone());
            continue;
        };
        for (i, c) in flags.char_indices() {
            match c {
                'q' => quiet = true,
                'O' | 'T' => {
                    let rest = &flags[i + 1..];
                    let value = if rest.is_empty() { it.next().cloned() } else { Some(rest.to_owned()) };
                    let value = value.ok_or(format!("option requires an argument -- '{c}'"))?;
                    if c == 'O' { output = Some(value) } else { timeout = Some(value) }
                    break;
                }
                other => return Err(format!("invalid option -- '{other}'")),
            }
        }
    }
    let timeout = match timeout {
        Some(t) => Some(t.parse::<f64>().ok().filter(|t| t.is_finite() && *t > 0.0).ok_or(format!("invalid timeout '{t}'"))?),
        None => None,
    };
    match <[String; 1]>::try_from(urls) {
        Ok([url]) => Ok(Wget { quiet, output, timeout, url }),
        Err(_) => Err("usage: wget [-q] [-O FILE] [-T SEC] URL".into()),
    }
}

/// The URL to fetch: `http://` is assumed when no scheme is given, as busybox does.
fn parse_url(url: &str) -> Result<Uri, String> {
    let full = if url.contains("://") { url.to_owned() } else { format!("http://{url}") };
    match full.parse::<Uri>() {
        Ok(u) if u.host().is_some() && matches!(u.scheme_str(), Some("http" | "https")) => Ok(u),
        _ => Err(format!("bad address '{url}'")),
    }
}

/// The file `wget URL` saves to: the last path segment, or `index.html`.
fn default_output(url: &Uri) -> String {
    match url.path().rsplit('/').next() {
        Some(last) if !last.is_empty() => last.to_owned(),
        _ => "index.html".into(),
    }
}

/// Where a redirect points, relative to the URL that answered it.
fn redirect_target(base: &Uri, location: &str) -> Option<Uri> {
    if location.contains("://") {
        return location.parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    Uri::builder()
        .scheme(base.scheme()?.clone())
        .authority(base.authority()?.clone())
        .path_and_query(path)
        .build()
        .ok()
}

/// busybox's wording for a response that is not 2xx.
fn status_error(status: StatusCode) -> String {
    format!("server returned error: HTTP/1.1 {} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_owned()
}

/// busybox's wording for a request that got no response.
fn send_error(host: &str, e: &wstd::http::Error) -> String {
    match e.downcast_ref::<HttpError>() {
        Some(HttpError::DnsError(_) | HttpError::DestinationNotFound) => format!("bad address '{host}'"),
        Some(HttpError::ConnectionRefused) => "can't connect to remote host: Connection refused".into(),
        Some(HttpError::ConnectionTimeout) => "can't connect to remote host: Connection timed out".into(),
        Some(
            code @ (HttpError::DestinationUnavailable
            | HttpError::DestinationIpProhibited
            | HttpError::DestinationIpUnroutable
            | HttpError::ConnectionTerminated
            | HttpError::ConnectionLimitReached),
        ) => format!("can't connect to remote host: {code:?}"),
        _ => format!("error getting response: {e}"),
    }
}

/// GETs `url`, following redirects; errors are the message to print.
async fn get(url: Uri, timeout: Option<f64>) -> Result<Response<Body>, String> {
    let mut client = Client::new();
    if let Some(secs) = timeout {
        let d = std::time::Duration::from_secs_f64(secs);
        client.set_connect_timeout(d);
        client.set_first_byte_timeout(d);
        client.set_between_bytes_timeout(d);
    }
    let mut url = url;
    for _ in 0..=MAX_REDIRECTS {
        let req = Request::get(url.clone())
            .header("user-agent", "Wget")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let host = url.host().unwrap_or_default().to_owned();
        let resp = client.send(req).await.map_err(|e| send_error(&host, &e))?;
        let location = resp.headers().get("location").and_then(|l| l.to_str().ok());
        match location.filter(|_| resp.status().is_redirection()) {
            Some(loc) => url = redirect_target(&url, loc).ok_or(format!("bad redirect location '{loc}'"))?,
            None if resp.status().is_success() => return Ok(resp),
            None => return Err(status_error(resp.status())),
        }
    }
    Err("too many redirections".into())
}

/// Copies the body to `out` as it arrives.
async fn copy_body(body: Body, out: &mut dyn Write) -> Result<(), String> {
    let mut body = std::pin::pin!(body.into_boxed_body());
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| format!("error reading body: {e}"))?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data).map_err(|e| format!("write error: {e}"))?;
        }
    }
    out.flush().map_err(|e| format!("write error: {e}"))
}

async fn wget_async(applet: &str, w: Wget) -> ExitCode {
    let url = match parse_url(&w.url) {
        Ok(u) => u,
        Err(e) => return fail(applet, e),
    };
    let output = w.output.clone().unwrap_or_else(|| default_output(&url));
    if !w.quiet {
        eprintln!("Connecting to {}", url.authority().map_or("", |a| a.as_str()));
    }
    let resp = match get(url, w.timeout).await {
        Ok(r) => r,
        Err(e) => return fail(applet, e),
    };
    let (mut out, name): (Box<dyn Write>, String) = if output == "-" {
        (Box::new(std::io::stdout().lock()), "stdout".into())
    } else {
        match std::fs::File::create(&output) {
            Ok(f) => (Box::new(f), format!("'{output}'")),
            Err(e) => return fail(applet, format!("can't open '{output}': {e}")),
        }
    };
    if !w.quiet {
        eprintln!("{} {name}", if output == "-" { "writing to" } else { "saving to" });
    }
    if let Err(e) = copy_body(resp.into_body(), &mut out).await {
        return fail(applet, e);
    }
    if !w.quiet {
        if output == "-" {
            eprintln!("written to stdout");
        } else {
            eprintln!("{name} saved");
        }
    }
    ExitCode::SUCCESS
}

/// `wget [-q] [-O FILE] [-T SEC] URL`: downloads URL (to stdout with `-O-`).
pub(crate) fn wget(args: &[String]) -> ExitCode {
    match parse_wget(args) {
        Ok(w) => wstd::runtime::block_on(wget_async("wget", w)),
        Err(e) => fail("wget", e),
    }
}

/// `http-get URL`: prints the body of URL, errors as `wget -q` reports them.
pub(crate) fn http_get(args: &[String]) -> ExitCode {
    match args {
        [url] => wstd::runtime::block_on(wget_async(
            "http-get",
            Wget { quiet: true, output: Some("-".into()), timeout: None, url: url.clone() },
        )),
        _ => fail("http-get", "usage: http-get URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn wget(quiet: bool, output: Option<&str>, timeout: Option<f64>, url: &str) -> Wget {
        Wget { quiet, output: output.map(str::to_owned), timeout, url: url.into() }
    }

    #[test]
    fn parse_wget_reads_bundled_and_separate_flags() {
        assert_eq!(parse_wget(&args("-qO- http://svc")), Ok(wget(true, Some("-"), None, "http://svc")));
        assert_eq!(parse_wget(&args("-q -O - svc:8080/x")), Ok(wget(true, Some("-"), None, "svc:8080/x")));
        assert_eq!(parse_wget(&args("-O out.txt http://a/b")), Ok(wget(false, Some("out.txt"), None, "http://a/b")));
        assert_eq!(parse_wget(&args("-q http://a")), Ok(wget(true, None, None, "http://a")));
        assert_eq!(parse_wget(&args("http://a -T 2 -qOf")), Ok(wget(true, Some("f"), Some(2.0), "http://a")));
        assert_eq!(
            parse_wget(&args("--quiet --output-document=f --timeout 1.5 http://a")),
            Ok(wget(true, Some("f"), Some(1.5), "http://a"))
        );
    }

    #[test]
    fn parse_wget_refuses_bad_command_lines() {
        for bad in ["", "-q", "-O", "-x http://a", "http://a http://b", "-T zero http://a", "--spider http://a"] {
            assert!(parse_wget(&args(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parse_url_assumes_http_and_needs_a_host() {
        assert_eq!(parse_url("svc.ns:8080/p?q=1").unwrap().to_string(), "http://svc.ns:8080/p?q=1");
        assert_eq!(parse_url("https://a/").unwrap().scheme_str(), Some("https"));
        assert!(parse_url("ftp://a/").is_err());
        assert!(parse_url("http://").is_err());
    }

    #[test]
    fn default_output_is_the_last_path_segment_or_index_html() {
        assert_eq!(default_output(&parse_url("http://a/x/file.txt?q").unwrap()), "file.txt");
        assert_eq!(default_output(&parse_url("http://a/x/").unwrap()), "index.html");
        assert_eq!(default_output(&parse_url("http://a").unwrap()), "index.html");
    }

    #[test]
    fn redirect_target_resolves_absolute_and_relative_locations() {
        let base = parse_url("http://a:81/dir/page").unwrap();
        assert_eq!(redirect_target(&base, "https://b/c").unwrap().to_string(), "https://b/c");
        assert_eq!(redirect_target(&base, "/root?x").unwrap().to_string(), "http://a:81/root?x");
        assert_eq!(redirect_target(&base, "next").unwrap().to_string(), "http://a:81/dir/next");
    }

    #[test]
    fn errors_are_worded_like_busybox() {
        assert_eq!(status_error(StatusCode::NOT_FOUND), "server returned error: HTTP/1.1 404 Not Found");
        assert_eq!(status_error(StatusCode::from_u16(599).unwrap()), "server returned error: HTTP/1.1 599");
        let refused = wstd::http::Error::from(HttpError::ConnectionRefused);
        assert_eq!(send_error("svc", &refused), "can't connect to remote host: Connection refused");
        let dns = wstd::http::Error::from(HttpError::DnsError(wasip2::http::types::DnsErrorPayload {
            rcode: None,
            info_code: None,
        }));
        assert_eq!(send_error("nope", &dns), "bad address 'nope'");
        assert_eq!(lookup_failure("x", LookupError::NameUnresolvable), "** server can't find x: NXDOMAIN");
    }
}
