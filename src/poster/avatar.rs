//! Followers' avatars for their posters, fetched once and kept in storage. The URL comes from
//! WeChat (`headimgurl`), but it is fetched by this server, inside its network: so only from
//! the avatar hosts of `FISSION_AVATAR_HOSTS`, never through a redirect off them, and never
//! from a private or loopback address, whatever the name resolves to (unless
//! `FISSION_AVATAR_ALLOW_PRIVATE` says so, for a test's stand-in WeChat).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::redirect::Policy;
use reqwest::Url;
use sha1::{Digest, Sha1};

use crate::config::Settings;
use crate::services::Services;

const AVATAR_MAX_BYTES: usize = 2 * 1024 * 1024;
const AVATAR_FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the avatar URL → stored avatar mapping is trusted (WeChat gives a new URL when the
/// picture changes, so this only bounds how long a dead mapping lingers).
const AVATAR_MAPPING_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_REDIRECTS: usize = 3;

/// The storage key of the avatar at `url`, fetching and storing it the first time. `None` (and
/// a poster without the avatar) when it may not or cannot be fetched: a slow avatar host must
/// not cost the follower their poster.
pub async fn stored(state: &Services, url: &str) -> Option<String> {
    let Some(url) = Url::parse(url)
        .ok()
        .filter(|u| permitted(u, &state.settings))
    else {
        tracing::warn!(
            "an avatar URL is not on WeChat's avatar hosts; the poster is drawn without it"
        );
        return None;
    };
    let mapping = format!(
        "avatar:{}",
        hex::encode(Sha1::digest(url.as_str().as_bytes()))
    );
    if let Ok(Some(key)) = state.store.get(&mapping).await {
        return Some(key);
    }
    match fetch(&state.settings, url).await {
        Ok((ext, bytes)) => {
            let key = match state.storage.put("avatar", ext, bytes).await {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(error = ?e, "could not store an avatar");
                    return None;
                }
            };
            if let Err(e) = state
                .store
                .set(&mapping, &key, AVATAR_MAPPING_TTL, false)
                .await
            {
                tracing::warn!(error = ?e, "could not remember a stored avatar");
            }
            Some(key)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not fetch an avatar; the poster is drawn without it");
            None
        }
    }
}

/// May `url` be fetched: http(s), no credentials, one of the avatar hosts (`name`, or
/// `name:port` for a non-default port), and not a private address written as an IP.
fn permitted(url: &Url, settings: &Settings) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    let named = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    let literal_ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && settings.avatar_hosts.contains(&named)
        && (settings.avatar_allow_private || literal_ip.is_none_or(is_public))
}

async fn fetch(settings: &Settings, url: Url) -> anyhow::Result<(&'static str, Vec<u8>)> {
    let mut response = client(settings)?
        .get(url)
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .context("requesting the avatar")?
        .error_for_status()
        .map_err(reqwest::Error::without_url)
        .context("the avatar host refused")?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(reqwest::Error::without_url)
        .context("reading the avatar")?
    {
        if bytes.len() + chunk.len() > AVATAR_MAX_BYTES {
            anyhow::bail!("the avatar is larger than {} bytes", AVATAR_MAX_BYTES);
        }
        bytes.extend_from_slice(&chunk);
    }
    let ext = match image::guess_format(&bytes).context("the avatar is not an image")? {
        image::ImageFormat::Png => "png",
        image::ImageFormat::Jpeg => "jpg",
        other => anyhow::bail!("unexpected avatar format {other:?}"),
    };
    Ok((ext, bytes))
}

/// A client that follows redirects only to permitted URLs and, unless private addresses are
/// allowed, connects only to public addresses of the names it resolves.
fn client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    let policy_settings = settings.clone();
    let mut builder = reqwest::Client::builder()
        .timeout(AVATAR_FETCH_TIMEOUT)
        .connect_timeout(AVATAR_FETCH_TIMEOUT)
        .redirect(Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if permitted(attempt.url(), &policy_settings) {
                attempt.follow()
            } else {
                attempt.error("a redirect off the avatar hosts")
            }
        }));
    if !settings.avatar_allow_private {
        builder = builder.dns_resolver(Arc::new(PublicAddressesOnly));
    }
    builder.build().context("building the avatar client")
}

/// Resolves names to their public addresses only: a name on the allow list that points inside
/// the network (by mistake, or by a rebinding trick between check and connect) fails to resolve.
pub struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Not loopback, private, link-local, carrier-grade NAT, unspecified, multicast or otherwise
/// reserved: an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hosts: &str, allow_private: bool) -> Settings {
        let mut s =
            Settings::from_lookup(|k| (k == "FISSION_AVATAR_HOSTS").then(|| hosts.into())).unwrap();
        s.avatar_allow_private = allow_private;
        s
    }

    #[test]
    fn only_the_avatar_hosts_are_permitted() {
        let wechat = settings(crate::config::DEFAULT_AVATAR_HOSTS, false);
        let ok = |u: &str, s: &Settings| permitted(&Url::parse(u).unwrap(), s);
        assert!(ok("https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", &wechat));
        assert!(ok("http://wx.qlogo.cn/mmopen/abc/0", &wechat));
        for bad in [
            "https://thirdwx.qlogo.cn.evil.example/x",
            "https://evil.example/thirdwx.qlogo.cn",
            "https://user:pw@thirdwx.qlogo.cn/x",
            "https://thirdwx.qlogo.cn:8443/x",
            "ftp://thirdwx.qlogo.cn/x",
            "http://127.0.0.1/x",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(!ok(bad, &wechat), "{bad}");
        }
        let stand_in = settings("127.0.0.1:4000", false);
        assert!(!ok("http://127.0.0.1:4000/a.png", &stand_in));
        let stand_in = settings("127.0.0.1:4000", true);
        assert!(ok("http://127.0.0.1:4000/a.png", &stand_in));
        assert!(!ok("http://127.0.0.1:4001/a.png", &stand_in));
    }

    #[test]
    fn private_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["183.3.226.35", "8.8.8.8", "2400:da00::6666"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
