//! Load generator for `POST /wechat/callback`, closed or open loop, plaintext or safe mode.
//!
//! Closed loop (the default): each of `--connections` workers sends signed WeChat `subscribe`
//! pushes, one at a time, from openids never seen before, for `--warmup` + `--duration`
//! seconds. Only requests started after the warm-up are counted.
//!
//! Open loop (`--rate R`): a push is due every 1/R seconds whatever the server does; each is
//! sent at its due time as a task of its own (at most `--max-in-flight` at once). Latency runs
//! from the due time, not from the actual send, so a server (or a generator) that falls behind
//! shows its queueing delay instead of hiding it. Pushes that could not leave on time (no free
//! slot, or the generator itself was late) are counted as late starts.
//!
//! Safe mode (`--aes-key KEY --appid APPID`): every push is encrypted the way WeChat does it
//! (AES-256-CBC, 32-byte PKCS#7 padding, `msg_signature`), independently of Fission's own code;
//! the implementation is checked against Tencent's sample vector before any load is sent.
//!
//! WeChat gives up on a push after 5 s: the share of pushes answered later than that (timeouts
//! of `--timeout`, 6 s by default, included) is reported in both loops.
//!
//! Run it through `bench/callback.sh` or `bench/compare.sh`, or against a running instance:
//! `cargo bench --bench callback_load -- --target http://127.0.0.1:8080 --mode subscribe`.
//! Later occurrences of an option override earlier ones, so a wrapper can set defaults.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes::Aes256;
use anyhow::{bail, ensure, Context, Result};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use clap::{Parser, ValueEnum};
use rand::{distributions::Alphanumeric, Rng};
use sha1::{Digest, Sha1};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// WeChat's own deadline for an answer to a push.
const WECHAT_DEADLINE: Duration = Duration::from_secs(5);
/// Open loop: a push that leaves later than this after its due time is a late start.
const LATE_AFTER: Duration = Duration::from_millis(5);

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
    /// closed loop: concurrent workers, each with one request in flight
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// open loop: send this many pushes per second, at fixed intervals, whatever the responses
    #[arg(long)]
    rate: Option<f64>,
    /// open loop: most requests in flight at once (a push waiting for a slot starts late)
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// measured seconds
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// seconds of load before measuring
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// client timeout per request, in seconds; a timeout counts as an error
    #[arg(long, default_value_t = 6)]
    timeout: u64,
    #[arg(long, value_enum, default_value_t = Mode::Subscribe)]
    mode: Mode,
    /// scenes for --mode credited: "1,2,3" or a range "1-1000" (used round-robin)
    #[arg(long, default_value = "1,2,3")]
    scenes: String,
    /// openid prefix; random by default so reruns never collide with recorded events
    #[arg(long)]
    openid_prefix: Option<String>,
    /// safe mode: the EncodingAESKey (43 characters) to encrypt every push with
    #[arg(long, requires = "appid")]
    aes_key: Option<String>,
    /// safe mode: the appid sealed into each encrypted push (WECHAT_APPID of the server)
    #[arg(long, requires = "aes_key")]
    appid: Option<String>,
    /// also print a one-line JSON summary
    #[arg(long)]
    json: bool,
    /// open loop: write every measured push to this file as `due_unix_ms latency_ms` lines
    /// (unanswered pushes have latency `-1`), to line slow pushes up with what the server did
    #[arg(long)]
    trace: Option<std::path::PathBuf>,
    /// passed by `cargo bench`; needed when running the binary directly
    #[arg(long, hide = true)]
    bench: bool,
}

/// What was measured, by one closed-loop worker or by the whole open loop.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    timeouts: u64,
    /// answered later than WeChat waits, or not at all (timeouts)
    over_deadline: u64,
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

    fn record(&mut self, latency: Duration, outcome: Outcome) {
        if latency > WECHAT_DEADLINE {
            self.over_deadline += 1;
        }
        match outcome {
            Ok((status, body)) => {
                let body = body.trim();
                if status == reqwest::StatusCode::OK
                    && (body == "success" || body.starts_with("<xml"))
                {
                    self.latencies_us.push(latency.as_micros() as u64);
                } else {
                    self.error(format!("HTTP {status}"), body);
                }
            }
            Err(e) => {
                if e.is_timeout() {
                    self.timeouts += 1;
                    if latency <= WECHAT_DEADLINE {
                        self.over_deadline += 1;
                    }
                }
                // Without the URL, whose signature differs on every request, errors group by kind.
                self.error(format!("{:#}", anyhow::Error::from(e.without_url())), "");
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.over_deadline += other.over_deadline;
        for (class, (n, sample)) in other.error_kinds {
            self.error_kinds.entry(class).or_insert((0, sample)).0 += n;
        }
    }
}

type Outcome = std::result::Result<(reqwest::StatusCode, String), reqwest::Error>;

/// For `--trace`: a measured push's sequence number and latency in µs (`None`: unanswered).
type Traced = (u64, Option<u64>);

/// How the open loop kept its schedule (measured pushes only).
#[derive(Default)]
struct Schedule {
    sent: u64,
    late_starts: u64,
    slot_waits: u64,
    max_lag: Duration,
}

struct Shared {
    args: Args,
    scenes: Vec<String>,
    prefix: String,
    safe: Option<SafeMode>,
    next_scene: AtomicUsize,
    start: Instant,
    /// `start` as Unix time in ms, for `--trace`.
    start_unix_ms: f64,
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

/// sha1 hex of the sorted concatenation, as WeChat signs callbacks (and, with the ciphertext
/// as a fourth part, encrypted pushes).
fn signature(parts: &[&str]) -> String {
    let mut parts = parts.to_vec();
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

fn timestamp_and_nonce() -> (String, String) {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = rand::thread_rng()
        .gen_range(100_000_000u64..10_000_000_000)
        .to_string();
    (timestamp, nonce)
}

/// The query string of a signed callback request.
fn signed_query(token: &str) -> String {
    let (timestamp, nonce) = timestamp_and_nonce();
    let signature = signature(&[token, &timestamp, &nonce]);
    format!("signature={signature}&timestamp={timestamp}&nonce={nonce}")
}

/// EncodingAESKeys are 43 random alphanumerics whose last character usually carries non-zero
/// trailing bits, which a strict base64 decoder refuses.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// WeChat's safe-mode envelope, sender side.
struct SafeMode {
    key: [u8; 32],
    appid: String,
}

impl SafeMode {
    fn new(encoding_aes_key: &str, appid: &str) -> Result<SafeMode> {
        ensure!(
            encoding_aes_key.len() == 43,
            "--aes-key must be 43 characters (an EncodingAESKey)"
        );
        let key = KEY_ENGINE
            .decode(format!("{encoding_aes_key}=").as_bytes())
            .context("--aes-key is not base64")?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| anyhow::anyhow!("--aes-key does not decode to 32 bytes"))?;
        ensure!(!appid.is_empty(), "--appid is empty");
        Ok(SafeMode {
            key,
            appid: appid.to_string(),
        })
    }

    /// base64(AES-256-CBC(random ‖ be32(len) ‖ xml ‖ appid, padded to 32-byte blocks)), with
    /// the first 16 bytes of the key as IV.
    fn encrypt(&self, random: &[u8; 16], xml: &str) -> String {
        let mut plain = Vec::with_capacity(16 + 4 + xml.len() + self.appid.len() + 32);
        plain.extend_from_slice(random);
        plain.extend_from_slice(&(xml.len() as u32).to_be_bytes());
        plain.extend_from_slice(xml.as_bytes());
        plain.extend_from_slice(self.appid.as_bytes());
        // PKCS#7 over WeChat's 32-byte block: always 1..=32 bytes of padding.
        let pad = 32 - plain.len() % 32;
        plain.resize(plain.len() + pad, pad as u8);
        let cipher = cbc::Encryptor::<Aes256>::new(&self.key.into(), self.key[..16].into());
        STANDARD.encode(cipher.encrypt_padded_vec_mut::<NoPadding>(&plain))
    }

    /// The query string and body of an encrypted push of `xml`.
    fn seal(&self, token: &str, xml: &str) -> (String, String) {
        let random: [u8; 16] = rand::thread_rng().gen();
        let encrypt = self.encrypt(&random, xml);
        let (timestamp, nonce) = timestamp_and_nonce();
        let msg_signature = signature(&[token, &timestamp, &nonce, &encrypt]);
        let signature = signature(&[token, &timestamp, &nonce]);
        let query = format!(
            "signature={signature}&timestamp={timestamp}&nonce={nonce}\
             &encrypt_type=aes&msg_signature={msg_signature}"
        );
        let body = format!(
            "<xml><ToUserName><![CDATA[gh_fission]]></ToUserName>\
             <Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        );
        (query, body)
    }
}

/// Checks the sender-side crypto against Tencent's published sample (WECHAT_PROTOCOL.md), so
/// a load of undecryptable pushes is never mistaken for a slow server.
fn check_safe_mode_vectors() -> Result<()> {
    let sample = SafeMode::new(
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "wxb11529c136998cb6",
    )?;
    let got = sample.encrypt(b"aaaabbbbccccdddd", "我是中文abcd123");
    let expected =
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
    ensure!(
        got == expected,
        "safe-mode encryption does not match Tencent's sample: {got}"
    );
    ensure!(
        signature(&["a", "b", "c"]) == "a9993e364706816aba3e25717850c26c9cd0d89d",
        "signature does not match the sample"
    );
    Ok(())
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

impl Shared {
    /// A signed (and in safe mode, encrypted) push from a new follower `openid`.
    fn request(&self, client: &reqwest::Client, openid: &str) -> reqwest::RequestBuilder {
        let scene = match self.args.mode {
            Mode::Subscribe => None,
            Mode::Credited => {
                let i = self.next_scene.fetch_add(1, Ordering::Relaxed);
                Some(self.scenes[i % self.scenes.len()].as_str())
            }
        };
        let xml = push_xml(openid, scene);
        let token = &self.args.token;
        let (query, body) = match &self.safe {
            Some(safe) => safe.seal(token, &xml),
            None => (signed_query(token), xml),
        };
        let base = self.args.target.trim_end_matches('/');
        client
            .post(format!("{base}/wechat/callback?{query}&openid={openid}"))
            .header("Content-Type", "text/xml")
            .body(body)
    }
}

async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let resp = request.send().await?;
    let status = resp.status();
    Ok((status, resp.text().await?))
}

async fn worker(id: usize, client: reqwest::Client, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(16 * 1024),
        ..Tally::default()
    };
    for seq in 0u64.. {
        let started = Instant::now();
        if started >= shared.end {
            break;
        }
        let openid = format!("{}w{id:03}n{seq:07}", shared.prefix);
        let outcome = send(shared.request(&client, &openid)).await;
        if started < shared.measure_from {
            continue; // warm-up
        }
        tally.record(started.elapsed(), outcome);
    }
    tally
}

/// Sends one push every 1/rate seconds from `shared.start` to `shared.end`, each as its own
/// task, and returns once every push has been answered (or has timed out).
async fn open_loop(
    client: reqwest::Client,
    shared: Arc<Shared>,
    rate: f64,
) -> Result<(Tally, Schedule)> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let traced: Arc<Mutex<Vec<Traced>>> = Arc::default();
    let cap = shared.args.max_in_flight;
    let slots = Arc::new(Semaphore::new(cap));
    let mut schedule = Schedule::default();
    for seq in 0u64.. {
        // From the start each time, so rounding never accumulates into drift.
        let due = shared.start + Duration::from_secs_f64(seq as f64 / rate);
        if due >= shared.end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let measured = due >= shared.measure_from;
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if measured {
                    schedule.slot_waits += 1;
                }
                slots.clone().acquire_owned().await?
            }
        };
        if measured {
            let lag = due.elapsed();
            schedule.sent += 1;
            if lag > LATE_AFTER {
                schedule.late_starts += 1;
            }
            schedule.max_lag = schedule.max_lag.max(lag);
        }
        let request = shared.request(&client, &format!("{}r{seq:08}", shared.prefix));
        let tally = tally.clone();
        let traced = traced.clone();
        tokio::spawn(async move {
            let outcome = send(request).await;
            // From the due time: a late start is part of the latency.
            let latency = due.elapsed();
            drop(slot);
            if measured {
                let answered = matches!(&outcome, Ok((status, _)) if status.is_success());
                traced
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((seq, answered.then_some(latency.as_micros() as u64)));
                tally
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(latency, outcome);
            }
        });
    }
    // Every slot back means every push has its answer.
    let _all = slots.acquire_many(cap as u32).await?;
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(path) = &shared.args.trace {
        let mut traced = std::mem::take(&mut *traced.lock().unwrap_or_else(|e| e.into_inner()));
        traced.sort_unstable();
        let mut out = String::with_capacity(traced.len() * 24);
        for (seq, latency) in traced {
            let due_ms = shared.start_unix_ms + seq as f64 * 1000.0 / rate;
            match latency {
                Some(us) => out.push_str(&format!("{due_ms:.1} {:.3}\n", us as f64 / 1000.0)),
                None => out.push_str(&format!("{due_ms:.1} -1\n")),
            }
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((tally, schedule))
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
    if args.connections == 0 || args.duration == 0 || args.timeout == 0 {
        bail!("--connections, --duration and --timeout must be positive");
    }
    if let Some(rate) = args.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number"
        );
        ensure!(
            (1..=u32::MAX as usize).contains(&args.max_in_flight),
            "--max-in-flight must be positive"
        );
    }
    let scenes = parse_scenes(&args.scenes)?;
    let safe = match (&args.aes_key, &args.appid) {
        (Some(key), Some(appid)) => {
            check_safe_mode_vectors()?;
            Some(SafeMode::new(key, appid)?)
        }
        _ => None,
    };
    let prefix = args.openid_prefix.clone().unwrap_or_else(|| {
        let tag: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        format!("obench_{tag}_")
    });
    let idle_per_host = match args.rate {
        Some(_) => args.max_in_flight,
        None => args.connections,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(idle_per_host)
        // Below the server's keep-alive (actix-web closes a connection idle for 5 s): a request
        // never goes out on a connection the server is closing at that moment.
        .pool_idle_timeout(Duration::from_secs(4))
        .timeout(Duration::from_secs(args.timeout))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    preflight(&client, &args).await?;

    let shape = match args.rate {
        Some(rate) => format!(
            "open loop rate={rate}/s max-in-flight={}",
            args.max_in_flight
        ),
        None => "closed loop".to_string(),
    };
    let security = match &args.appid {
        Some(appid) => format!("safe mode (appid {appid})"),
        None => "plaintext".to_string(),
    };
    println!(
        "callback_load: mode={} target={} connections={} warmup={}s duration={}s openid prefix={prefix} {shape} {security}",
        args.mode.name(),
        args.target, args.connections, args.warmup, args.duration
    );
    let start = Instant::now();
    let start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let measure_from = start + Duration::from_secs(args.warmup);
    let shared = Arc::new(Shared {
        end: measure_from + Duration::from_secs(args.duration),
        start,
        start_unix_ms,
        measure_from,
        next_scene: AtomicUsize::new(0),
        scenes,
        prefix,
        safe,
        args,
    });
    let (mut total, schedule) = match shared.args.rate {
        Some(rate) => {
            let (tally, schedule) = open_loop(client, shared.clone(), rate).await?;
            (tally, Some(schedule))
        }
        None => {
            let handles: Vec<_> = (0..shared.args.connections)
                .map(|id| tokio::spawn(worker(id, client.clone(), shared.clone())))
                .collect();
            let mut total = Tally::default();
            for handle in handles {
                total.merge(handle.await.context("worker task panicked")?);
            }
            (total, None)
        }
    };
    // Nothing starts after `end`; the window closes when the last measured push is answered.
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
    let attempts = ok + total.errors;
    let over_share = match attempts {
        0 => 0.0,
        n => total.over_deadline as f64 / n as f64,
    };
    println!("requests ok: {ok}");
    println!("errors:      {}", total.errors);
    println!("throughput:  {throughput:.1} req/s over {window:.2} s");
    println!("latency ms:  p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}");
    println!(
        "over 5 s:    {} ({:.2}%), {} timeouts (--timeout {} s)",
        total.over_deadline,
        over_share * 100.0,
        total.timeouts,
        shared.args.timeout
    );
    if let (Some(s), Some(rate)) = (&schedule, shared.args.rate) {
        println!(
            "schedule:    {rate}/s asked, {} sent ({:.1}/s), {} late starts (> {} ms), {} waited for a slot, max start lag {:.2} ms",
            s.sent,
            s.sent as f64 / shared.args.duration as f64,
            s.late_starts,
            LATE_AFTER.as_millis(),
            s.slot_waits,
            s.max_lag.as_secs_f64() * 1000.0
        );
    }
    let mut kinds: Vec<_> = total.error_kinds.iter().collect();
    kinds.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
    for (class, (n, sample)) in kinds.iter().take(5) {
        match sample.is_empty() {
            true => println!("  {n} x {class}"),
            false => println!("  {n} x {class}, e.g. {sample:?}"),
        }
    }
    if shared.args.json {
        let open = schedule.as_ref();
        let summary = serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339(),
            "target": shared.args.target,
            "mode": shared.args.mode.name(),
            "loop": if open.is_some() { "open" } else { "closed" },
            "safe_mode": shared.safe.is_some(),
            "connections": if open.is_some() { None } else { Some(shared.args.connections) },
            "rate_rps": shared.args.rate,
            "duration_s": shared.args.duration,
            "window_s": window,
            "ok": ok,
            "errors": total.errors,
            "timeouts": total.timeouts,
            "over_5s": total.over_deadline,
            "over_5s_share": over_share,
            "throughput_rps": throughput,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "max_ms": max,
            "sent": open.map(|s| s.sent),
            "sent_rps": open.map(|s| s.sent as f64 / shared.args.duration as f64),
            "late_starts": open.map(|s| s.late_starts),
            "slot_waits": open.map(|s| s.slot_waits),
            "max_start_lag_ms": open.map(|s| s.max_lag.as_secs_f64() * 1000.0),
            "timeout_s": shared.args.timeout,
            "openid_prefix": shared.prefix,
        });
        println!("{summary}");
    }
    if ok == 0 {
        bail!("no request succeeded");
    }
    Ok(())
}
