//! Closed-loop load generator for `POST /wechat/callback`.
//!
//! Each of `--connections` workers sends signed WeChat `subscribe` pushes, one at a time, from
//! openids never seen before, for `--warmup` + `--duration` seconds. Only requests started after
//! the warm-up are counted. Run it through `bench/callback.sh`, or against a running instance:
//! `cargo bench --bench callback_load -- --target http://127.0.0.1:8080 --mode subscribe`.
//! Later occurrences of an option override earlier ones, so a wrapper can set defaults.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use rand::{distributions::Alphanumeric, Rng};
use sha1::{Digest, Sha1};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// plain follows (no EventKey)
    Subscribe,
    /// follows through invite codes (`EventKey=qrscene_<scene>`)
    Credited,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Subscribe => "subscribe",
            Mode::Credited => "credited",
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    about = "Load generator for Fission's WeChat callback",
    args_override_self = true
)]
struct Args {
    /// base URL of the running instance
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// callback Token (WECHAT_TOKEN of the server)
    #[arg(long, env = "WECHAT_TOKEN", default_value = "fission")]
    token: String,
    /// concurrent workers, each with one request in flight
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// measured seconds
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// seconds of load before measuring
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    #[arg(long, value_enum, default_value_t = Mode::Subscribe)]
    mode: Mode,
    /// scenes for --mode credited: "1,2,3" or a range "1-1000" (used round-robin)
    #[arg(long, default_value = "1,2,3")]
    scenes: String,
    /// openid prefix; random by default so reruns never collide with recorded events
    #[arg(long)]
    openid_prefix: Option<String>,
    /// also print a one-line JSON summary
    #[arg(long)]
    json: bool,
    /// passed by `cargo bench`; needed when running the binary directly
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    /// error class (status or transport error) -> (count, first body seen)
    error_kinds: BTreeMap<String, (u64, String)>,
}

impl Tally {
    fn error(&mut self, class: String, sample: &str) {
        self.errors += 1;
        let entry = self.error_kinds.entry(class);
        entry
            .or_insert_with(|| (0, sample.chars().take(160).collect()))
            .0 += 1;
    }
}

struct Shared {
    args: Args,
    scenes: Vec<String>,
    prefix: String,
    next_scene: AtomicUsize,
    measure_from: Instant,
    end: Instant,
}

fn parse_scenes(spec: &str) -> Result<Vec<String>> {
    if let Some((a, b)) = spec.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
            if a > b {
                bail!("empty scene range {spec}");
            }
            return Ok((a..=b).map(|s| s.to_string()).collect());
        }
    }
    let scenes: Vec<String> = spec
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if scenes.is_empty() {
        bail!("no scenes in {spec:?}");
    }
    Ok(scenes)
}

/// sha1 hex of the sorted concatenation, as WeChat signs callbacks.
fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// The query string of a signed callback request.
fn signed_query(token: &str) -> String {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = rand::thread_rng()
        .gen_range(100_000_000u64..10_000_000_000)
        .to_string();
    let signature = signature(token, &timestamp, &nonce);
    format!("signature={signature}&timestamp={timestamp}&nonce={nonce}")
}

fn push_xml(openid: &str, scene: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp();
    let key = match scene {
        Some(s) => format!(
            "<EventKey><![CDATA[qrscene_{s}]]></EventKey><Ticket><![CDATA[bench_ticket_{s}]]></Ticket>"
        ),
        None => String::new(),
    };
    format!(
        "<xml><ToUserName><![CDATA[gh_fission]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>\
         {key}</xml>"
    )
}

async fn worker(id: usize, client: reqwest::Client, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(16 * 1024),
        ..Tally::default()
    };
    let base = shared.args.target.trim_end_matches('/');
    for seq in 0u64.. {
        let started = Instant::now();
        if started >= shared.end {
            break;
        }
        let openid = format!("{}w{id:03}n{seq:07}", shared.prefix);
        let scene = match shared.args.mode {
            Mode::Subscribe => None,
            Mode::Credited => {
                let i = shared.next_scene.fetch_add(1, Ordering::Relaxed);
                Some(shared.scenes[i % shared.scenes.len()].as_str())
            }
        };
        let url = format!(
            "{base}/wechat/callback?{}&openid={openid}",
            signed_query(&shared.args.token)
        );
        let request = client
            .post(url)
            .header("Content-Type", "text/xml")
            .body(push_xml(&openid, scene));
        let outcome = async {
            let resp = request.send().await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.text().await?))
        }
        .await;
        let elapsed = started.elapsed();
        if started < shared.measure_from {
            continue; // warm-up
        }
        match outcome {
            Ok((status, body)) => {
                let body = body.trim();
                if status == reqwest::StatusCode::OK
                    && (body == "success" || body.starts_with("<xml"))
                {
                    tally.latencies_us.push(elapsed.as_micros() as u64);
                } else {
                    tally.error(format!("HTTP {status}"), body);
                }
            }
            // Without the URL, whose signature differs on every request, errors group by kind.
            Err(e) => tally.error(format!("{:#}", anyhow::Error::from(e.without_url())), ""),
        }
    }
    tally
}

/// Checks reachability and the token with the URL-check GET, which records nothing.
async fn preflight(client: &reqwest::Client, args: &Args) -> Result<()> {
    let echostr = "fission_bench_probe";
    let url = format!(
        "{}/wechat/callback?{}&echostr={echostr}",
        args.target.trim_end_matches('/'),
        signed_query(&args.token)
    );
    let resp = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.target))?;
    let status = resp.status();
    let body = resp.text().await.context("reading the URL-check reply")?;
    if status != reqwest::StatusCode::OK || body.trim() != echostr {
        bail!("URL check failed (wrong --token?): HTTP {status}: {body:.200}");
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench binaries too (without `--bench`): no load there.
        eprintln!("callback_load: skipped; run `cargo bench --bench callback_load -- --help`");
        return Ok(());
    }
    let args = Args::parse();
    if args.connections == 0 || args.duration == 0 {
        bail!("--connections and --duration must be positive");
    }
    let scenes = parse_scenes(&args.scenes)?;
    let prefix = args.openid_prefix.clone().unwrap_or_else(|| {
        let tag: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        format!("obench_{tag}_")
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    preflight(&client, &args).await?;

    println!(
        "callback_load: mode={} target={} connections={} warmup={}s duration={}s openid prefix={prefix}",
        args.mode.name(),
        args.target, args.connections, args.warmup, args.duration
    );
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let shared = Arc::new(Shared {
        end: measure_from + Duration::from_secs(args.duration),
        measure_from,
        next_scene: AtomicUsize::new(0),
        scenes,
        prefix,
        args,
    });
    let handles: Vec<_> = (0..shared.args.connections)
        .map(|id| tokio::spawn(worker(id, client.clone(), shared.clone())))
        .collect();
    let mut total = Tally::default();
    for handle in handles {
        let tally = handle.await.context("worker task panicked")?;
        total.latencies_us.extend(tally.latencies_us);
        total.errors += tally.errors;
        for (class, (n, sample)) in tally.error_kinds {
            total.error_kinds.entry(class).or_insert((0, sample)).0 += n;
        }
    }
    // Workers stop starting requests at `end`; the window closes when the last one returns.
    let window = measure_from.elapsed().as_secs_f64();

    let lat = &mut total.latencies_us;
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let throughput = ok as f64 / window;
    let (p50, p90, p99) = (
        percentile(lat, 50.0),
        percentile(lat, 90.0),
        percentile(lat, 99.0),
    );
    let max = lat.last().copied().unwrap_or(0) as f64 / 1000.0;
    println!("requests ok: {ok}");
    println!("errors:      {}", total.errors);
    println!("throughput:  {throughput:.1} req/s over {window:.2} s");
    println!("latency ms:  p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}");
    let mut kinds: Vec<_> = total.error_kinds.iter().collect();
    kinds.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
    for (class, (n, sample)) in kinds.iter().take(5) {
        match sample.is_empty() {
            true => println!("  {n} x {class}"),
            false => println!("  {n} x {class}, e.g. {sample:?}"),
        }
    }
    if shared.args.json {
        let summary = serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339(),
            "target": shared.args.target,
            "mode": shared.args.mode.name(),
            "connections": shared.args.connections,
            "duration_s": shared.args.duration,
            "window_s": window,
            "ok": ok,
            "errors": total.errors,
            "throughput_rps": throughput,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "max_ms": max,
            "openid_prefix": shared.prefix,
        });
        println!("{summary}");
    }
    if ok == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}
