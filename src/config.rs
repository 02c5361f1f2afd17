//! Typed settings. This is the only module that reads the environment (or `fission.toml`);
//! everything else receives a `Settings`. Secrets are wrapped so `Debug` never prints them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use secrecy::{ExposeSecret, SecretString};

/// Where the WeChat API lives and how to authenticate against it.
#[derive(Debug, Clone)]
pub struct WechatSettings {
    pub appid: String,
    pub secret: SecretString,
    /// The callback Token configured in the WeChat console (signs every push).
    pub token: SecretString,
    pub encoding_aes_key: Option<SecretString>,
    pub api_base: String,
    pub mp_base: String,
    pub open_base: String,
    pub use_stable_token: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    pub redis_prefix: String,
    pub bind: String,
    /// External base URL; `None` means "the address the listener bound to".
    pub public_url: Option<String>,
    pub storage: String,
    pub admin_password: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    pub session_key: Option<SecretString>,
    pub wechat: WechatSettings,
    /// True when no `WECHAT_APPID` is configured: the built-in simulator stands in for WeChat.
    pub sandbox: bool,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Permanent QR codes Fission may create (WeChat caps an account at 100,000).
    pub permanent_quota: u32,
    /// Lifetime of temporary invite codes, once the permanent quota is used up.
    pub temporary_code_days: u32,
    /// Run the outbox worker and the code-renewal job in this process.
    pub run_workers: bool,
    /// How long a claimed outbox job stays invisible to other workers before it is retried.
    pub outbox_lease_secs: u32,
    pub database_max_connections: u32,
    /// Group commit of pushes: at most this many pushes in one transaction.
    pub push_batch_max: usize,
    /// How long a batch waits for company while another batch is being written (0 = never).
    pub push_batch_wait_ms: u64,
    /// Batches written at once by this instance (each holds one database connection).
    pub push_writers: usize,
    /// How long a new notice to an inviter waits for more news to join it.
    pub notice_delay_ms: u64,
    /// How often each instance grants the delayed rewards that came due.
    pub delayed_rewards_every_secs: u64,
    /// Font for nicknames on posters (face 0 of a TTF/OTF/TTC); missing = posters without them.
    pub poster_font: PathBuf,
    /// A text message equal to this gets the sender's poster as the reply.
    pub poster_keyword: String,
    /// A menu CLICK with this key gets the sender's poster as the reply.
    pub poster_menu_key: String,
    /// The official account's name, as the follow-first page shows it (sandbox: the
    /// simulator's account); unset = "本公众号".
    pub account_name: Option<String>,
    /// Hosts (`name` or `name:port`) avatars may be fetched from: WeChat's avatar hosts.
    pub avatar_hosts: Vec<String>,
    /// Fetch avatars from private and loopback addresses too (tests' stand-in WeChat only).
    pub avatar_allow_private: bool,
    /// Deliver webhooks to loopback, private and link-local addresses too (tests, receivers
    /// inside the operator's own network).
    pub webhook_allow_private: bool,
    /// A request body must have arrived this long after the request began: long enough for a
    /// 5 MB poster background on a slow uplink, short enough that a stalled client lets go.
    pub body_timeout_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

/// WeChat's avatar hosts (`headimgurl` of `/sns/userinfo`).
pub const DEFAULT_AVATAR_HOSTS: &str = "thirdwx.qlogo.cn,wx.qlogo.cn";

/// The addresses (`FISSION_TRUSTED_PROXIES`: IPs or CIDR blocks) of reverse proxies in front of
/// Fission. Only a request arriving from one of them has its `X-Forwarded-For` believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(list: &str) -> anyhow::Result<TrustedProxies> {
        let mut blocks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (ip, bits) = match item.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (item, None),
            };
            let ip: IpAddr = ip
                .parse()
                .with_context(|| format!("FISSION_TRUSTED_PROXIES: {item:?} is not an address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .with_context(|| format!("FISSION_TRUSTED_PROXIES: bad prefix in {item:?}"))?,
                None => max,
            };
            blocks.push((ip, bits));
        }
        Ok(TrustedProxies(blocks))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(block, bits)| match (block, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*b) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }

    /// Who sent a request that arrived from `peer`: the peer itself, unless it is a trusted
    /// proxy; then the nearest address in `X-Forwarded-For` that is not one (addresses further
    /// left were written by the client and prove nothing).
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.contains(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for hop in forwarded_for.unwrap_or("").rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }
}

pub const DEFAULT_POSTER_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";

pub const SANDBOX_APPID: &str = "wx5andb0xf1ss10n0";
const SANDBOX_SECRET: &str = "sandbox-secret-not-for-production";
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
pub const DEFAULT_MP_BASE: &str = "https://mp.weixin.qq.com";
pub const DEFAULT_OPEN_BASE: &str = "https://open.weixin.qq.com";

impl Settings {
    /// Environment first, then `fission.toml` (path in `FISSION_CONFIG`, default `./fission.toml`
    /// when present) for keys the environment does not set.
    pub fn load() -> anyhow::Result<Settings> {
        let mut values: HashMap<String, String> = HashMap::new();
        let file = std::env::var("FISSION_CONFIG").unwrap_or_else(|_| "fission.toml".into());
        if Path::new(&file).exists() {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
            let table: toml::Table = text.parse().with_context(|| format!("parsing {file}"))?;
            for (key, value) in table {
                let value = match value {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                values.insert(key.to_ascii_uppercase(), value);
            }
        }
        for (key, value) in std::env::vars() {
            values.insert(key, value);
        }
        Settings::from_lookup(|key| values.get(key).cloned())
    }

    /// Builds settings from any key lookup; tests use this instead of the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let get = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        let or = |key: &str, default: &str| get(key).unwrap_or_else(|| default.to_string());
        let secret = |key: &str| get(key).map(SecretString::from);

        let public_url = get("FISSION_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string());
        let appid = get("WECHAT_APPID");
        let sandbox = appid.is_none();
        let secret_value = match (&appid, get("WECHAT_SECRET")) {
            (Some(_), Some(s)) => s,
            (Some(_), None) => bail!("WECHAT_APPID is set but WECHAT_SECRET is not"),
            (None, _) => SANDBOX_SECRET.to_string(),
        };
        let token = match get("WECHAT_TOKEN") {
            Some(t) => t,
            None if sandbox => "fission".to_string(),
            None => bail!("WECHAT_TOKEN is required with WECHAT_APPID (the callback Token of the WeChat console)"),
        };
        let encoding_aes_key = get("WECHAT_ENCODING_AES_KEY");
        if let Some(key) = &encoding_aes_key {
            if key.len() != 43 {
                bail!("WECHAT_ENCODING_AES_KEY must be exactly 43 characters");
            }
        }
        // In sandbox mode the bases are filled in once the listener is bound (see startup).
        let base = |key: &str, default: &str| {
            or(key, if sandbox { "" } else { default })
                .trim_end_matches('/')
                .to_string()
        };
        let wechat = WechatSettings {
            appid: appid.unwrap_or_else(|| SANDBOX_APPID.to_string()),
            secret: SecretString::from(secret_value),
            token: SecretString::from(token),
            encoding_aes_key: encoding_aes_key.map(SecretString::from),
            api_base: base("WECHAT_API_BASE", DEFAULT_API_BASE),
            mp_base: base("WECHAT_MP_BASE", DEFAULT_MP_BASE),
            open_base: base("WECHAT_OPEN_BASE", DEFAULT_OPEN_BASE),
            use_stable_token: parse_bool(
                "WECHAT_USE_STABLE_TOKEN",
                get("WECHAT_USE_STABLE_TOKEN"),
                true,
            )?,
        };

        let session_key = secret("FISSION_SESSION_KEY");
        if let Some(key) = &session_key {
            if key.expose_secret().len() < 64 {
                bail!("FISSION_SESSION_KEY must be at least 64 bytes");
            }
        }
        let log_format = match or("FISSION_LOG_FORMAT", "text").as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => bail!("FISSION_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let permanent_quota = parse_num(
            "FISSION_PERMANENT_QUOTA",
            get("FISSION_PERMANENT_QUOTA"),
            100_000,
        )?;
        if permanent_quota > 100_000 {
            bail!("FISSION_PERMANENT_QUOTA cannot exceed WeChat's cap of 100000");
        }
        let temporary_code_days = parse_num(
            "FISSION_TEMPORARY_CODE_DAYS",
            get("FISSION_TEMPORARY_CODE_DAYS"),
            30,
        )?;
        if !(2..=30).contains(&temporary_code_days) {
            bail!("FISSION_TEMPORARY_CODE_DAYS must be between 2 and 30");
        }

        Ok(Settings {
            database_url: SecretString::from(or(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/fission",
            )),
            redis_url: secret("REDIS_URL"),
            redis_prefix: or("FISSION_REDIS_PREFIX", "fission:"),
            bind: or("FISSION_BIND", "127.0.0.1:8080"),
            public_url,
            storage: or("FISSION_STORAGE", "file://./data"),
            admin_password: secret("FISSION_ADMIN_PASSWORD"),
            admin_token: secret("FISSION_ADMIN_TOKEN"),
            session_key,
            wechat,
            sandbox,
            log_format,
            log_filter: or("RUST_LOG", "info"),
            permanent_quota,
            temporary_code_days,
            run_workers: parse_bool("FISSION_WORKERS", get("FISSION_WORKERS"), true)?,
            outbox_lease_secs: parse_num(
                "FISSION_OUTBOX_LEASE_SECS",
                get("FISSION_OUTBOX_LEASE_SECS"),
                60,
            )?
            .max(1),
            database_max_connections: parse_num(
                "DATABASE_MAX_CONNECTIONS",
                get("DATABASE_MAX_CONNECTIONS"),
                16,
            )?
            .max(2),
            push_batch_max: parse_num::<usize>(
                "FISSION_PUSH_BATCH_MAX",
                get("FISSION_PUSH_BATCH_MAX"),
                128,
            )?
            .clamp(1, 1000),
            push_batch_wait_ms: parse_num::<u64>(
                "FISSION_PUSH_BATCH_WAIT_MS",
                get("FISSION_PUSH_BATCH_WAIT_MS"),
                2,
            )?
            .min(50),
            push_writers: parse_num::<usize>(
                "FISSION_PUSH_WRITERS",
                get("FISSION_PUSH_WRITERS"),
                2,
            )?
            .clamp(1, 32),
            notice_delay_ms: parse_num::<u64>(
                "FISSION_NOTICE_DELAY_MS",
                get("FISSION_NOTICE_DELAY_MS"),
                2000,
            )?
            .min(600_000),
            delayed_rewards_every_secs: parse_num::<u64>(
                "FISSION_DELAYED_REWARDS_EVERY_SECS",
                get("FISSION_DELAYED_REWARDS_EVERY_SECS"),
                60,
            )?
            .clamp(1, 3600),
            poster_font: PathBuf::from(or("FISSION_POSTER_FONT", DEFAULT_POSTER_FONT)),
            poster_keyword: or("FISSION_POSTER_KEYWORD", "海报").trim().to_string(),
            poster_menu_key: or("FISSION_POSTER_MENU_KEY", "MY_POSTER"),
            account_name: get("FISSION_ACCOUNT_NAME")
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
            avatar_hosts: or("FISSION_AVATAR_HOSTS", DEFAULT_AVATAR_HOSTS)
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            avatar_allow_private: parse_bool(
                "FISSION_AVATAR_ALLOW_PRIVATE",
                get("FISSION_AVATAR_ALLOW_PRIVATE"),
                false,
            )?,
            webhook_allow_private: parse_bool(
                "FISSION_WEBHOOK_ALLOW_PRIVATE",
                get("FISSION_WEBHOOK_ALLOW_PRIVATE"),
                false,
            )?,
            body_timeout_secs: parse_num::<u64>(
                "FISSION_BODY_TIMEOUT_SECS",
                get("FISSION_BODY_TIMEOUT_SECS"),
                30,
            )?
            .clamp(1, 600),
            trusted_proxies: TrustedProxies::parse(
                &get("FISSION_TRUSTED_PROXIES").unwrap_or_default(),
            )?,
        })
    }
}

fn parse_bool(key: &str, value: Option<String>, default: bool) -> anyhow::Result<bool> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => bail!("{key} must be true or false, not {other:?}"),
    }
}

fn parse_num<T: std::str::FromStr>(
    key: &str,
    value: Option<String>,
    default: T,
) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{key} must be a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn no_appid_means_sandbox_with_defaults() {
        let s = settings(&[]).unwrap();
        assert!(s.sandbox);
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.wechat.token.expose_secret(), "fission");
        assert!(s.wechat.use_stable_token);
        assert_eq!(s.permanent_quota, 100_000);
        assert_eq!(s.poster_keyword, "海报");
        assert_eq!(s.poster_menu_key, "MY_POSTER");
        assert_eq!(s.poster_font, PathBuf::from(DEFAULT_POSTER_FONT));
        assert_eq!(s.avatar_hosts, ["thirdwx.qlogo.cn", "wx.qlogo.cn"]);
        assert!(!s.avatar_allow_private);
        assert!(!s.webhook_allow_private);
        assert_eq!(s.body_timeout_secs, 30);
        assert_eq!(s.trusted_proxies, TrustedProxies::default());
    }

    #[test]
    fn appid_requires_secret_and_token() {
        assert!(settings(&[("WECHAT_APPID", "wx1")]).is_err());
        assert!(settings(&[("WECHAT_APPID", "wx1"), ("WECHAT_SECRET", "s")]).is_err());
        let s = settings(&[
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_SECRET", "s"),
            ("WECHAT_TOKEN", "t"),
        ])
        .unwrap();
        assert!(!s.sandbox);
        assert_eq!(s.wechat.api_base, DEFAULT_API_BASE);
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let s = settings(&[
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_SECRET", "topsecretvalue"),
            ("WECHAT_TOKEN", "tokenvalue"),
            ("DATABASE_URL", "postgres://u:dbpassword@h/db"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        for secret in ["topsecretvalue", "tokenvalue", "dbpassword"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let none = TrustedProxies::default();
        let peer: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(none.client(Some(peer), Some("198.51.100.7")), Some(peer));
        let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let lb: IpAddr = "10.1.2.3".parse().unwrap();
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(proxies.client(Some(lb), Some("198.51.100.7")), Some(client));
        // A forged entry further left is not believed.
        assert_eq!(
            proxies.client(Some(lb), Some("1.2.3.4, 198.51.100.7, 10.9.9.9")),
            Some(client)
        );
        assert_eq!(proxies.client(Some(lb), Some("garbage")), Some(lb));
        assert_eq!(proxies.client(Some(peer), Some("1.2.3.4")), Some(peer));
        assert!(proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(!proxies.contains("11.0.0.1".parse().unwrap()));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        let all = TrustedProxies::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn bad_values_are_reported() {
        assert!(settings(&[("WECHAT_ENCODING_AES_KEY", "short")]).is_err());
        assert!(settings(&[("FISSION_SESSION_KEY", "short")]).is_err());
        assert!(settings(&[("WECHAT_USE_STABLE_TOKEN", "maybe")]).is_err());
        assert!(settings(&[("FISSION_PERMANENT_QUOTA", "100001")]).is_err());
    }
}
