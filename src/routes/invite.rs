//! `/invite`: the follower's "my invite code" page, opened inside WeChat. Who the visitor is
//! comes only from WeChat OAuth, kept in the encrypted session cookie; an openid in a query
//! string or form is never looked at. The QR code and poster images are served to the signed-in
//! follower only.

use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::db::campaigns::GrantStatus;
use crate::domain::time::china;
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::layout::{self, Layout};
use crate::db;
use crate::domain::OpenId;
use crate::error::AppError;
use crate::poster::personal;
use crate::referral::progress::{self, Progress, WayUp};
use crate::referral::{self, codes, texts};
use crate::services::ServiceError;
use crate::state::AppState;
use crate::wechat::jsapi::JsConfig;
use crate::wechat::WechatError;

const OPENID_KEY: &str = "openid";
const SIGNED_IN_AT_KEY: &str = "signed_in_at";
const STATE_KEY: &str = "oauth_state";
/// A follower's sign-in lasts this long; then WeChat OAuth again (silent with `snsapi_base`),
/// so a copied cookie does not open someone's page forever.
const SESSION_MAX_AGE_SECS: i64 = 30 * 24 * 3600;
/// WeChat answers these for a code that was already exchanged, or is unknown or expired.
const CODE_USED: i64 = 40163;
const CODE_INVALID: i64 = 40029;
/// How long the page waits for a new code; WeChat itself may take 10 s a call.
const ISSUE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
/// The title of the page shown while WeChat cannot issue the follower's code.
pub const UNAVAILABLE_TITLE: &str = "邀请码暂时生成不了";

/// Mounts the follower's pages under `/invite`, with the follower's own session cookie.
pub fn configure(cfg: &mut web::ServiceConfig, session: SessionMiddleware<CookieSessionStore>) {
    cfg.service(
        web::scope("/invite")
            .wrap(session)
            .route("", web::get().to(page))
            .route("/oauth", web::get().to(oauth_return))
            .route("/profile", web::get().to(profile))
            .route("/qrcode.png", web::get().to(qrcode))
            .route("/poster.png", web::get().to(poster)),
    );
}

/// The signed-in follower, if the session (which only this server can have written) says so
/// and was started less than `SESSION_MAX_AGE_SECS` ago.
fn signed_in(session: &Session) -> Option<OpenId> {
    let openid: String = session.get(OPENID_KEY).ok().flatten()?;
    let since: i64 = session.get(SIGNED_IN_AT_KEY).ok().flatten()?;
    if !(0..=SESSION_MAX_AGE_SECS).contains(&(Utc::now().timestamp() - since)) {
        return None;
    }
    OpenId::parse(&openid).ok()
}

#[derive(Clone, Copy)]
enum Scope {
    /// Only the openid, silently.
    Base,
    /// Nickname and avatar too, after the user agrees (for the poster).
    UserInfo,
}

/// Sends the browser to WeChat's consent step; WeChat comes back to `/invite/oauth`.
fn start_oauth(
    state: &AppState,
    session: &Session,
    scope: Scope,
) -> Result<HttpResponse, AppError> {
    let nonce = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    session
        .insert(STATE_KEY, &nonce)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("storing the OAuth state: {e}")))?;
    let wechat = state.wechat.settings();
    let redirect_uri = format!("{}/invite/oauth", state.public_url);
    let query = serde_urlencoded::to_string([
        ("appid", wechat.appid.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("response_type", "code"),
        (
            "scope",
            match scope {
                Scope::Base => "snsapi_base",
                Scope::UserInfo => "snsapi_userinfo",
            },
        ),
        ("state", nonce.as_str()),
    ])
    .map_err(|e| AppError::Internal(e.into()))?;
    let url = format!(
        "{}/connect/oauth2/authorize?{query}#wechat_redirect",
        wechat.open_base
    );
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

async fn page(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    let Some(openid) = signed_in(&session) else {
        return start_oauth(&state, &session, Scope::Base);
    };
    let follows = match progress::follows(&state, &openid).await {
        Ok(follows) => follows,
        Err(e) => return wechat_unavailable(&state, e),
    };
    if !follows {
        // The page still helps without its QR code when WeChat cannot issue one just now.
        let code = referral::channels::follow_first(&state)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "no follow-first code for the invite page"))
            .ok();
        let page = FollowFirstPage {
            layout: Layout::of(&state),
            account_name: state
                .settings
                .account_name
                .clone()
                .unwrap_or_else(|| "本公众号".to_string()),
            qr: code
                .as_ref()
                .and_then(|c| c.image_key.as_ref())
                .map(|key| format!("/media/{key}")),
            scan_link: code.filter(|_| state.settings.sandbox).map(|c| c.url),
        };
        return personal_page(&page, StatusCode::OK);
    }
    // Issued in a task of its own: past the page's budget the follower is told to come back,
    // and the code is still issued and stored for that next visit.
    let issuing = tokio::spawn({
        let (services, openid) = (state.services.clone(), openid.clone());
        async move { codes::issue(&services, &openid).await }
    });
    let code = match tokio::time::timeout(ISSUE_BUDGET, issuing).await {
        Ok(Ok(Ok(code))) => code,
        Ok(Ok(Err(e))) => return wechat_unavailable(&state, e),
        Ok(Err(e)) => return Err(AppError::Internal(anyhow::Error::new(e))),
        Err(_) => {
            tracing::warn!(
                "WeChat is slow to issue a code; the page asks the follower to come back"
            );
            return error_page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "邀请码正在生成",
                "微信响应较慢，你的邀请码正在生成。请稍等几秒再刷新本页。",
            );
        }
    };
    let user = db::users::get(&state.pool, &openid).await?;
    let progress = progress::of(&state, &openid).await?;
    let fresh = match &progress {
        Some(p) => progress::seen(&state, &openid, p.campaign.id).await?,
        None => 0,
    };
    let subscribe = match progress
        .as_ref()
        .and_then(|p| p.campaign.subscribe_template_id.clone())
    {
        None => None,
        Some(template_id) if state.settings.sandbox => {
            let query = serde_urlencoded::to_string([
                ("openid", openid.as_str()),
                ("templates", template_id.as_str()),
                ("back", "/invite"),
            ])
            .unwrap_or_default();
            Some(SubscribeView {
                template_id,
                sandbox_link: Some(format!("/sandbox/subscribe?{query}")),
                js: None,
            })
        }
        Some(template_id) => {
            // The page works without the button when WeChat cannot sign it just now.
            let url = format!("{}/invite", state.public_url);
            let js = state
                .wechat
                .js_config(&url)
                .await
                .inspect_err(
                    |e| tracing::warn!(error = %e, "no JS-SDK signature for the invite page"),
                )
                .ok();
            Some(SubscribeView {
                template_id,
                sandbox_link: None,
                js,
            })
        }
    };
    let mut page = InvitePage::new(
        &state,
        user.and_then(|u| u.nickname),
        &code.ticket,
        state.settings.sandbox.then_some(code.url),
        progress,
    );
    page.subscribe = subscribe;
    if let Some(c) = page.campaign.as_mut() {
        c.mark_new(fresh);
        for reward in c.rewards.iter_mut().filter(|r| r.needs_code) {
            let url = referral::redemption::code_url(&state, reward.grant_id).await?;
            reward.redeem_qr = Some(data_uri_png(&crate::wechat::qrcode::render_png_at(
                &url, 240,
            )?));
        }
    }
    personal_page(&page, StatusCode::OK)
}

/// "Show my nickname and avatar on the poster": OAuth again, asking for the profile.
async fn profile(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    start_oauth(&state, &session, Scope::UserInfo)
}

#[derive(Deserialize)]
struct OAuthReturn {
    code: Option<String>,
    state: Option<String>,
}

async fn oauth_return(
    state: web::Data<AppState>,
    session: Session,
    q: web::Query<OAuthReturn>,
) -> Result<HttpResponse, AppError> {
    // Single use, whatever happens next.
    let expected: Option<String> = session.remove_as(STATE_KEY).and_then(Result::ok);
    let state_ok = match (&expected, &q.state) {
        (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    };
    if !state_ok {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "登录请求无效",
            "这个登录链接已失效或不是从本页面发起的，请重新打开页面登录。",
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "没有完成授权",
            "需要你在微信里同意授权，才能查看你的邀请码。",
        );
    };
    let grant = match state.wechat.oauth_openid(code).await {
        Ok(grant) => grant,
        Err(e) if matches!(e.errcode(), Some(CODE_USED | CODE_INVALID)) => {
            return error_page(
                &state,
                StatusCode::BAD_REQUEST,
                "登录已过期",
                "这个授权码已经用过或已过期（微信的授权码只能用一次）。请重新登录。",
            );
        }
        Err(e) => {
            log_wechat_failure(&e);
            return error_page(
                &state,
                StatusCode::BAD_GATEWAY,
                "微信登录暂时失败",
                "没能向微信确认你的身份，请稍后再试。",
            );
        }
    };
    let Ok(openid) = OpenId::parse(&grant.openid) else {
        tracing::warn!("WeChat OAuth returned an openid that is not one");
        return error_page(
            &state,
            StatusCode::BAD_GATEWAY,
            "微信登录暂时失败",
            "微信返回的身份信息无法识别，请稍后再试。",
        );
    };
    if grant.scope.contains("snsapi_userinfo") {
        save_profile(&state, &openid, &grant.access_token).await;
    }
    // A new session id on sign-in, so a session planted before it cannot be carried over.
    session.renew();
    session
        .insert(OPENID_KEY, openid.as_str())
        .and_then(|()| session.insert(SIGNED_IN_AT_KEY, Utc::now().timestamp()))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("storing the session: {e}")))?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, "/invite"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Nickname and avatar for the poster. Failing here is not failing the sign-in.
async fn save_profile(state: &AppState, openid: &OpenId, user_token: &str) {
    let info = match state
        .wechat
        .oauth_userinfo(user_token, openid.as_str())
        .await
    {
        Ok(info) => info,
        Err(e) => {
            log_wechat_failure(&e);
            return;
        }
    };
    let nickname = info.nickname.trim();
    let avatar = Some(info.headimgurl.as_str()).filter(|u| !u.is_empty());
    if nickname.is_empty() {
        return;
    }
    if let Err(e) = referral::profile::share(state, openid, nickname, avatar).await {
        tracing::warn!(error = ?e, "could not save a follower's profile");
    }
}

/// WeChat is failing, refusing (busy, quota spent) or too slow, so the code cannot be issued
/// now: the follower is told so on a page, not shown an error.
fn wechat_unavailable(state: &AppState, e: ServiceError) -> Result<HttpResponse, AppError> {
    match &e {
        ServiceError::Wechat(e) => {
            tracing::warn!(error = %e, "the invite page could not get the code from WeChat")
        }
        ServiceError::Other(e) => {
            tracing::error!(error = ?e, "the invite page could not issue the code")
        }
    }
    error_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        UNAVAILABLE_TITLE,
        "微信暂时没有响应，你的邀请码还没有生成好。请过一会儿再刷新本页。",
    )
}

fn log_wechat_failure(e: &WechatError) {
    tracing::warn!(error = %e, "WeChat OAuth call failed");
}

/// The signed-in follower's QR code image.
async fn qrcode(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    let openid = follower(&state, &session).await?;
    let code = codes::issue(&state, &openid).await?;
    let stored = match code.image_key.as_deref() {
        Some(key) => state.storage.get(key).await?,
        None => None,
    };
    let png = match stored {
        Some(png) => png,
        None => crate::wechat::qrcode::render_png(&code.url)?.into(),
    };
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .body(png))
}

/// The signed-in follower's poster (a JPEG, whatever the path says), revalidated by ETag.
async fn poster(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let openid = follower(&state, &session).await?;
    let poster = personal::for_follower(&state, &openid).await?;
    let etag = format!(
        "\"{}\"",
        poster
            .key
            .trim_start_matches("poster/")
            .trim_end_matches(".jpg")
    );
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    Ok(if fresh {
        response.finish()
    } else {
        response.content_type("image/jpeg").body(poster.jpeg)
    })
}

/// The images are for a signed-in follower only.
async fn follower(state: &AppState, session: &Session) -> Result<OpenId, AppError> {
    let openid = signed_in(session).ok_or(AppError::Unauthorized)?;
    if !progress::follows(state, &openid).await? {
        return Err(AppError::Forbidden(
            "follow the official account first".into(),
        ));
    }
    Ok(openid)
}

/// A page about one person: never cached by anything between them and us.
fn personal_page(page: &impl Template, status: StatusCode) -> Result<HttpResponse, AppError> {
    let mut response = layout::render(page)?;
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

fn error_page(
    state: &AppState,
    status: StatusCode,
    title: &'static str,
    message: &'static str,
) -> Result<HttpResponse, AppError> {
    let page = InviteErrorPage {
        layout: Layout::of(state),
        title,
        message,
        // Only a sign-in that failed needs signing in again; otherwise the page is just retried.
        action: if status == StatusCode::SERVICE_UNAVAILABLE {
            "刷新"
        } else {
            "重新登录"
        },
    };
    personal_page(&page, status)
}

#[derive(Template)]
#[template(path = "invite_error.html")]
struct InviteErrorPage {
    layout: Layout,
    title: &'static str,
    message: &'static str,
    action: &'static str,
}

#[derive(Template)]
#[template(path = "invite_follow.html")]
struct FollowFirstPage {
    layout: Layout,
    account_name: String,
    /// The follow-first channel code's image.
    qr: Option<String>,
    /// Sandbox only: the scan page the code encodes.
    scan_link: Option<String>,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    layout: Layout,
    nickname: Option<String>,
    /// Changes when the code is renewed, so phones do not keep showing a stale image.
    image_version: String,
    /// Sandbox only: the scan page the QR code encodes, since nobody scans it with WeChat.
    scan_link: Option<String>,
    campaign: Option<CampaignView>,
    /// The campaign sends subscription notices: the button that asks for one.
    subscribe: Option<SubscribeView>,
}

struct SubscribeView {
    template_id: String,
    /// Sandbox mode: the simulator's subscription prompt (WeChat's open tag needs WeChat).
    sandbox_link: Option<String>,
    /// Inside WeChat: `wx.config` for the `wx-open-subscribe` open tag.
    js: Option<JsConfig>,
}

struct CampaignView {
    name: String,
    rules: String,
    ends: Option<String>,
    revoke_window_days: i32,
    invites: i32,
    next: Option<NextView>,
    has_tiers: bool,
    rewards: Vec<RewardView>,
    friends: Vec<FriendView>,
    /// Friends who joined since the follower last looked (or was told).
    new_friends: i64,
    rank: Option<i64>,
    way_up: Option<WayUp>,
    /// The leaderboard's top: (rank, masked name, invites, is the follower).
    top: Vec<TopView>,
}

struct TopView {
    rank: i64,
    name: String,
    invites: i32,
    me: bool,
}

impl CampaignView {
    /// The place above the follower's and the invites that take it.
    fn next_place(&self) -> Option<(i64, i32)> {
        match self.way_up {
            Some(WayUp::Place { place, more }) => Some((place, more)),
            _ => None,
        }
    }

    /// Marks the newest `fresh` counted friends as new.
    fn mark_new(&mut self, fresh: i64) {
        self.new_friends = fresh;
        let mut left = fresh;
        for f in self.friends.iter_mut().filter(|f| !f.revoked) {
            if left <= 0 {
                break;
            }
            f.new = true;
            left -= 1;
        }
    }
}

struct NextView {
    name: String,
    more: i32,
    threshold: i32,
    percent: i32,
}

struct RewardView {
    grant_id: i64,
    name: String,
    threshold: i32,
    status: String,
    code: Option<String>,
    claim_instructions: String,
    /// An in-store reward not redeemed yet: the page shows its redemption code.
    needs_code: bool,
    /// That code, as a `data:` image (the page's own session is all that may see it).
    redeem_qr: Option<String>,
}

/// A PNG inline in the page, so only the signed-in follower's page ever carries it.
fn data_uri_png(png: &[u8]) -> String {
    use base64::Engine;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

struct FriendView {
    name: String,
    date: String,
    revoked: bool,
    new: bool,
}

impl InvitePage {
    fn new(
        state: &AppState,
        nickname: Option<String>,
        ticket: &str,
        scan_link: Option<String>,
        progress: Option<Progress>,
    ) -> InvitePage {
        use sha1::{Digest, Sha1};
        let image_version = hex::encode(&Sha1::digest(ticket.as_bytes())[..6]);
        InvitePage {
            layout: Layout::of(state),
            nickname,
            image_version,
            scan_link,
            campaign: progress.map(CampaignView::from),
            subscribe: None,
        }
    }
}

impl From<Progress> for CampaignView {
    fn from(p: Progress) -> CampaignView {
        let invites = p.invites;
        let terms = p.campaign.terms;
        CampaignView {
            name: terms.name,
            rules: terms.rules,
            ends: terms.ends_at.map(china_time),
            revoke_window_days: terms.revoke_window_days,
            invites,
            has_tiers: p.has_tiers,
            next: p.next.map(|n| NextView {
                percent: (invites.max(0) * 100 / n.threshold.max(1)).clamp(0, 100),
                name: n.name,
                more: n.more,
                threshold: n.threshold,
            }),
            rewards: p
                .grants
                .into_iter()
                .map(|g| RewardView {
                    grant_id: g.id,
                    name: g.tier_name,
                    threshold: g.threshold,
                    status: match (g.status, g.redeemed_at) {
                        (GrantStatus::Granted, Some(at)) => format!("已核销（{}）", china_time(at)),
                        (GrantStatus::Granted, None) => "已获得".into(),
                        (GrantStatus::OutOfStock, _) => "奖品已发完，工作人员会联系你".into(),
                        (GrantStatus::Revoked, _) => "已收回（好友取消了关注）".into(),
                    },
                    needs_code: g.status == GrantStatus::Granted
                        && g.redeem_in_store
                        && g.redeemed_at.is_none(),
                    claim_instructions: match g.status {
                        GrantStatus::Revoked => String::new(),
                        _ => g.claim_instructions,
                    },
                    code: g.code,
                    redeem_qr: None,
                })
                .chain(p.waiting.into_iter().map(|w| RewardView {
                    grant_id: 0,
                    name: w.tier_name,
                    threshold: w.threshold,
                    status: format!(
                        "等待发放：{} 起，届时好友仍在关注即发放",
                        china_date(w.due_at)
                    ),
                    code: None,
                    claim_instructions: String::new(),
                    needs_code: false,
                    redeem_qr: None,
                }))
                .collect(),
            friends: p
                .friends
                .into_iter()
                .map(|f| FriendView {
                    name: texts::mask_name(f.nickname.as_deref().unwrap_or("")),
                    date: china_date(f.credited_at),
                    revoked: f.revoked_at.is_some(),
                    new: false,
                })
                .collect(),
            new_friends: 0,
            rank: p.rank,
            way_up: p.way_up,
            top: p
                .top
                .into_iter()
                .map(|r| TopView {
                    rank: r.rank,
                    me: Some(r.rank) == p.rank,
                    name: texts::mask_name(r.nickname.as_deref().unwrap_or("")),
                    invites: r.invites,
                })
                .collect(),
        }
    }
}

fn china_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&china())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn china_date(t: DateTime<Utc>) -> String {
    t.with_timezone(&china()).format("%m-%d").to_string()
}
