//! The WeChat API calls Fission makes. Every call goes through `call`, which attaches the
//! shared access_token, retries once with a new token when WeChat says the token is bad,
//! backs off on "system busy" (−1), and never retries configuration errors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{WechatError, TOKEN_ERRCODES};
use super::jsapi::{self, JsConfig, TicketCache};
use super::qrcode::{showqrcode_url, QrCodeRequest, QrTicket};
use super::token::TokenManager;
use crate::config::WechatSettings;
use crate::shared_store::SharedStore;
use crate::telemetry::Metrics;

const BUSY_RETRIES: u32 = 3;

#[derive(Clone)]
pub struct WechatClient(Arc<Inner>);

struct Inner {
    http: reqwest::Client,
    settings: WechatSettings,
    tokens: TokenManager,
    jsapi: TicketCache,
    metrics: Metrics,
}

/// `/cgi-bin/user/info` (no nickname or avatar since 2021-12-27).
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    pub subscribe: i64,
    pub openid: String,
    #[serde(default)]
    pub subscribe_time: Option<i64>,
    #[serde(default)]
    pub subscribe_scene: Option<String>,
    #[serde(default)]
    pub qr_scene: Option<i64>,
    #[serde(default)]
    pub qr_scene_str: Option<String>,
}

/// One page of `/cgi-bin/user/get`.
#[derive(Debug, Clone, Deserialize)]
pub struct FollowerPage {
    pub total: i64,
    pub count: i64,
    #[serde(default)]
    pub data: Option<FollowerIds>,
    #[serde(default)]
    pub next_openid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FollowerIds {
    pub openid: Vec<String>,
}

impl WechatClient {
    pub fn new(
        settings: WechatSettings,
        store: SharedStore,
        metrics: Metrics,
    ) -> anyhow::Result<WechatClient> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(64)
            .build()?;
        let jsapi = TicketCache::new(store.clone(), &settings.appid);
        let tokens = TokenManager::new(store, http.clone(), &settings, metrics.clone());
        Ok(WechatClient(Arc::new(Inner {
            http,
            settings,
            tokens,
            jsapi,
            metrics,
        })))
    }

    pub fn settings(&self) -> &WechatSettings {
        &self.0.settings
    }

    pub fn tokens(&self) -> &TokenManager {
        &self.0.tokens
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Calls `/cgi-bin/{path}` with the access_token. `body` is sent as JSON (POST) when present.
    pub async fn call<T: DeserializeOwned>(
        &self,
        api: &'static str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, WechatError> {
        self.call_with(api, query, |http, url| match body {
            Some(b) => http.post(url).json(b),
            None => http.get(url),
        })
        .await
    }

    /// `call` for any request shape: `build` makes the request afresh for each attempt (a
    /// multipart body cannot be replayed), the token and the retries are handled here.
    async fn call_with<T: DeserializeOwned>(
        &self,
        api: &'static str,
        query: &[(&str, &str)],
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, WechatError> {
        let url = format!("{}/cgi-bin/{api}", self.0.settings.api_base);
        let mut token_retried = false;
        let mut busy = 0;
        loop {
            let token = self.0.tokens.token().await?;
            let reply: Value = build(&self.0.http, &url)
                .query(&[("access_token", token.as_str())])
                .query(query)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let errcode = reply.get("errcode").and_then(Value::as_i64).unwrap_or(0);
            self.0.metrics.wechat_call(api, errcode);
            if errcode == 0 {
                return serde_json::from_value(reply)
                    .map_err(|e| WechatError::BadResponse(format!("{api}: {e}")));
            }
            if TOKEN_ERRCODES.contains(&errcode) && !token_retried {
                token_retried = true;
                self.0.tokens.invalidate(&token).await?;
                continue;
            }
            if errcode == -1 && busy < BUSY_RETRIES {
                busy += 1;
                tokio::time::sleep(Duration::from_millis(200 << busy)).await;
                continue;
            }
            return Err(api_error(errcode, &reply));
        }
    }

    pub async fn create_qrcode(&self, request: &QrCodeRequest) -> Result<QrTicket, WechatError> {
        self.call("qrcode/create", &[], Some(&request.body())).await
    }

    pub fn showqrcode_url(&self, ticket: &str) -> String {
        showqrcode_url(&self.0.settings.mp_base, ticket)
    }

    pub async fn user_info(&self, openid: &str) -> Result<UserInfo, WechatError> {
        self.call("user/info", &[("openid", openid), ("lang", "zh_CN")], None)
            .await
    }

    pub async fn followers(&self, next_openid: Option<&str>) -> Result<FollowerPage, WechatError> {
        self.call(
            "user/get",
            &[("next_openid", next_openid.unwrap_or(""))],
            None,
        )
        .await
    }

    pub async fn send_text(&self, openid: &str, content: &str) -> Result<(), WechatError> {
        let body = json!({ "touser": openid, "msgtype": "text", "text": { "content": content } });
        self.call::<Value>("message/custom/send", &[], Some(&body))
            .await
            .map(drop)
    }

    /// A category template message (`template/send`): `data` maps keywords (`thing1`,
    /// `number2` …) to their values; `url` is where tapping it leads.
    pub async fn send_template(
        &self,
        openid: &str,
        template_id: &str,
        data: &BTreeMap<String, String>,
        url: Option<&str>,
    ) -> Result<(), WechatError> {
        let mut body =
            json!({ "touser": openid, "template_id": template_id, "data": keyword_data(data) });
        if let Some(url) = url {
            body["url"] = json!(url);
        }
        self.call::<Value>("message/template/send", &[], Some(&body))
            .await
            .map(drop)
    }

    /// A one-time subscription notice (`subscribe/bizsend`); each needs an acceptance of
    /// `template_id` by the follower (43101 without one). `page` is where tapping it leads.
    pub async fn send_subscription(
        &self,
        openid: &str,
        template_id: &str,
        data: &BTreeMap<String, String>,
        page: Option<&str>,
    ) -> Result<(), WechatError> {
        let mut body =
            json!({ "touser": openid, "template_id": template_id, "data": keyword_data(data) });
        if let Some(page) = page {
            body["page"] = json!(page);
        }
        self.call::<Value>("message/subscribe/bizsend", &[], Some(&body))
            .await
            .map(drop)
    }

    /// `wx.config` for the page at `url` (signed with the shared jsapi_ticket).
    pub async fn js_config(&self, url: &str) -> Result<JsConfig, WechatError> {
        let ticket = self
            .0
            .jsapi
            .ticket(|| async {
                let reply: TicketReply = self
                    .call("ticket/getticket", &[("type", "jsapi")], None)
                    .await?;
                Ok((reply.ticket, reply.expires_in))
            })
            .await?;
        let nonce: String = {
            use rand::distributions::{Alphanumeric, DistString};
            Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
        };
        let timestamp = chrono::Utc::now().timestamp();
        Ok(JsConfig {
            app_id: self.0.settings.appid.clone(),
            signature: jsapi::signature(&ticket, &nonce, timestamp, url),
            timestamp,
            nonce,
        })
    }

    /// Exchanges an OAuth code (single use, 5 minutes) for the user's openid.
    pub async fn oauth_openid(&self, code: &str) -> Result<OAuthGrant, WechatError> {
        let s = &self.0.settings;
        self.sns(
            "sns/oauth2/access_token",
            "oauth2/access_token",
            &[
                ("appid", s.appid.as_str()),
                ("secret", s.secret.expose_secret()),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .await
    }

    /// Nickname and avatar of a user who granted `snsapi_userinfo`, with the user's own token
    /// from `oauth_openid` (not the account's access_token).
    pub async fn oauth_userinfo(
        &self,
        user_token: &str,
        openid: &str,
    ) -> Result<OAuthUserInfo, WechatError> {
        self.sns(
            "sns/userinfo",
            "userinfo",
            &[
                ("access_token", user_token),
                ("openid", openid),
                ("lang", "zh_CN"),
            ],
        )
        .await
    }

    /// A GET under `/sns/`, which authenticates with its own parameters rather than the
    /// account's access_token, so `call`'s token handling does not apply.
    async fn sns<T: DeserializeOwned>(
        &self,
        api: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, WechatError> {
        let reply: Value = self
            .0
            .http
            .get(format!("{}/sns/{path}", self.0.settings.api_base))
            .query(query)
            .send()
            .await?
            .json()
            .await?;
        let errcode = reply.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        self.0.metrics.wechat_call(api, errcode);
        if errcode != 0 {
            return Err(api_error(errcode, &reply));
        }
        serde_json::from_value(reply).map_err(|e| WechatError::BadResponse(format!("{api}: {e}")))
    }

    /// Uploads an image as temporary media (kept by WeChat for 3 days) and returns its media_id.
    pub async fn upload_image(
        &self,
        file_name: &str,
        content_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<String, WechatError> {
        #[derive(Deserialize)]
        struct Uploaded {
            media_id: String,
        }
        let uploaded: Uploaded = self
            .call_with("media/upload", &[("type", "image")], |http, url| {
                // With its length known the form is sent with a Content-Length, not chunked.
                let part = || {
                    reqwest::multipart::Part::stream_with_length(bytes.clone(), bytes.len() as u64)
                        .file_name(file_name.to_string())
                };
                // An unparsable type only loses the header; WeChat sniffs the bytes anyway.
                let part = part().mime_str(content_type).unwrap_or_else(|_| part());
                http.post(url)
                    .multipart(reqwest::multipart::Form::new().part("media", part))
            })
            .await?;
        Ok(uploaded.media_id)
    }

    pub async fn send_image(&self, openid: &str, media_id: &str) -> Result<(), WechatError> {
        let body =
            json!({ "touser": openid, "msgtype": "image", "image": { "media_id": media_id } });
        self.call::<Value>("message/custom/send", &[], Some(&body))
            .await
            .map(drop)
    }
}

fn api_error(errcode: i64, reply: &Value) -> WechatError {
    let errmsg = reply
        .get("errmsg")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    WechatError::from_code(errcode, errmsg)
}

/// `/cgi-bin/ticket/getticket?type=jsapi`.
#[derive(Debug, Clone, Deserialize)]
struct TicketReply {
    ticket: String,
    expires_in: i64,
}

/// `/sns/userinfo`: what a user shares with `snsapi_userinfo`.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthUserInfo {
    pub openid: String,
    #[serde(default)]
    pub nickname: String,
    /// Empty when the user has no avatar.
    #[serde(default)]
    pub headimgurl: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthGrant {
    pub openid: String,
    pub access_token: String,
    #[serde(default)]
    pub scope: String,
}

/// `{"thing1": {"value": "…"}, …}`, the shape both template and subscription messages take.
fn keyword_data(data: &BTreeMap<String, String>) -> Value {
    Value::Object(
        data.iter()
            .map(|(k, v)| (k.clone(), json!({ "value": v })))
            .collect(),
    )
}
