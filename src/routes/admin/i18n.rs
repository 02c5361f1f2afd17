//! The dashboard's two languages: Chinese by default, English when the browser's
//! Accept-Language prefers it. One table, key → (Chinese, English); a test checks that every
//! key the templates and handlers use is in it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The language the browser ranks highest among the two we have (ties: the first listed).
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("en") => Lang::En,
                Some("zh") => Lang::Zh,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, lang)| lang)
    }

    pub fn html(&self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

pub struct Msg;

impl Msg {
    /// The text of `key`; an unknown key shows itself (and fails the table test).
    pub fn get(lang: Lang, key: &str) -> &'static str {
        match MESSAGES.binary_search_by(|(k, _, _)| (*k).cmp(key)) {
            Ok(i) => match lang {
                Lang::Zh => MESSAGES[i].1,
                Lang::En => MESSAGES[i].2,
            },
            Err(_) => "??",
        }
    }
}

/// Codes Fission stores (events, outcomes, channels, job states) as a person reads them. `kind`
/// is the family (`event`, `outcome`, `channel`, `result`, `job`, `status`); the entry is
/// `code.{kind}.{raw}`. A code without one shows as it is; a message result that is a WeChat
/// errcode reads "refused (errcode)".
pub fn code(lang: Lang, kind: &str, raw: &str) -> String {
    if kind == "result" && !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{} ({raw})", Msg::get(lang, "code.result.refused"));
    }
    let key = format!("code.{kind}.{raw}");
    match Msg::get(lang, &key) {
        "??" => raw.to_string(),
        text => text.to_string(),
    }
}

/// Sorted by key (binary search; a test keeps it sorted).
const MESSAGES: &[(&str, &str, &str)] = &[
    ("board.all_campaigns", "全部活动（累计）", "All campaigns (all-time)"),
    ("board.apply", "筛选", "Apply"),
    ("board.campaign", "活动", "Campaign"),
    ("board.date_error", "日期格式应为 年-月-日", "Dates must be YYYY-MM-DD"),
    ("board.empty", "还没有邀请记录。", "No referrals yet."),
    ("board.export", "导出排行榜 CSV", "Export leaderboard CSV"),
    ("board.export_ledger", "导出邀请明细 CSV", "Export referral ledger CSV"),
    ("board.export_ledger_xlsx", "导出邀请明细 Excel", "Export referral ledger (Excel)"),
    ("board.export_xlsx", "导出排行榜 Excel", "Export leaderboard (Excel)"),
    ("board.from", "从", "From"),
    ("board.invites", "有效邀请", "Invites"),
    ("board.nickname", "昵称", "Nickname"),
    ("board.rank", "排名", "Rank"),
    ("board.search", "搜索", "Search"),
    ("board.search_hint", "昵称或完整 OpenID", "Nickname or full OpenID"),
    ("board.to", "到", "To"),
    ("brand.admin", "运营后台", "Dashboard"),
    ("campaign.add_codes", "添加兑换码", "Add codes"),
    ("campaign.avatar", "头像", "Avatar"),
    ("campaign.background", "海报背景图", "Poster background"),
    ("campaign.background_hint", "PNG 或 JPEG，不超过 5 MB，建议 750×1334", "PNG or JPEG, at most 5 MB; 750×1334 suggested"),
    ("campaign.basics", "基本设置", "Basics"),
    ("campaign.claim_hint", "领取说明会在粉丝获得奖励后显示在其邀请页上。勾选「到店核销」的档位，邀请页还会显示核销二维码，店员用核销员账号扫码核销（每份奖励只能核销一次）。", "The claim instructions show on the follower's invite page once the reward is won. For tiers marked \"Redeem in store\" the page also shows a redemption code that staff scan with a staff account (each reward can be redeemed once)."),
    ("campaign.claim_instructions", "领取说明", "How to claim"),
    ("campaign.claim_placeholder", "领取说明，例如：到店出示本页核销码领取", "How to claim, e.g. show this page's code in store"),
    ("campaign.code_pool", "兑换码池", "Code pool"),
    ("campaign.code_pools", "奖励兑换码", "Reward code pools"),
    ("campaign.codes_file", "兑换码文件", "Code file"),
    ("campaign.codes_placeholder", "或在此粘贴，每行一个兑换码", "Or paste here, one code per line"),
    ("campaign.credit_hint", "邀请成功后发给邀请人。", "Sent to the inviter on each credit."),
    ("campaign.credit_text", "邀请成功通知", "Credit message"),
    ("campaign.default", "默认", "default"),
    ("campaign.drag_hint", "拖动预览上的方框调整二维码、头像和昵称的位置（数值会同步到左侧），保存后预览按新布局重新生成。", "Drag the boxes on the preview to place the QR code, avatar and nickname (the numbers follow); the preview is redrawn once you save."),
    ("campaign.end", "结束活动…", "End campaign…"),
    ("campaign.end_after_none", "结束后，粉丝的邀请页将显示“目前没有进行中的活动”，二维码仍可分享，新的关注不计入任何活动。", "Once it ends, followers' invite pages say no campaign is running; the QR codes still work, and new follows count for no campaign."),
    ("campaign.end_after_other", "结束后，粉丝的邀请页将显示活动", "Once it ends, followers' invite pages show the campaign"),
    ("campaign.end_after_other_tail", "，邀请计数从 0 开始（每个活动分别计数）。", "; their invite counts start from 0 there (each campaign counts on its own)."),
    ("campaign.end_confirm", "确认结束", "End it now"),
    ("campaign.end_intro", "结束立即生效，无法撤销：此后的关注不再计入本活动，本活动的邀请记录、排行榜和导出都会保留。", "Ending takes effect at once and cannot be undone: later follows no longer count for this campaign; its referrals, leaderboard and exports are kept."),
    ("campaign.end_title", "结束活动", "End the campaign"),
    ("campaign.ended", "已结束", "Ended"),
    ("campaign.ends_at", "结束时间", "Ends"),
    ("campaign.fields", "模板字段", "Template fields"),
    ("campaign.fields_hint", "每行一个：关键词=内容，关键词须与模板一致（如 thing1、number2、time3）。可用占位符：", "One per line: keyword=value, with the template's keywords (thing1, number2, time3 …). Placeholders:"),
    ("campaign.granted", "已发放", "granted"),
    ("campaign.induced_sharing", "注意：微信禁止以奖励诱导用户分享到朋友圈或群（诱导分享），违规的公众号会被限制功能甚至封号。请改为邀请好友关注的说法。涉及的内容：", "Careful: WeChat forbids rewarding people for sharing to Moments or groups (induced sharing) and restricts or bans accounts that do. Word it as inviting friends to follow instead. Found in: "),
    ("campaign.layout_hint", "单位为背景图像素，原点在左上角。", "In background pixels, from the top-left corner."),
    ("campaign.messages", "消息文案", "Messages"),
    ("campaign.name", "活动名称", "Name"),
    ("campaign.new", "新建活动", "New campaign"),
    ("campaign.nickname", "昵称", "Nickname"),
    ("campaign.nickname_color", "昵称颜色", "Nickname colour"),
    ("campaign.no_background", "尚未上传背景图（使用默认海报）。", "No background uploaded (the default poster is used)."),
    ("campaign.no_end", "不结束", "open-ended"),
    ("campaign.no_pool", "该档位不发兑换码。", "This tier hands out no codes."),
    ("campaign.no_tiers", "还没有奖励档位。", "No reward tiers yet."),
    ("campaign.notices", "通知邀请人", "Telling inviters"),
    ("campaign.notices_hint", "微信自 2023 年起限制客服消息：用户发消息后 48 小时内 5 条，关注、扫码或点菜单后 1 分钟内 3 条。Fission 把同一位邀请人待通知的好友合并成一条，额度用完后依次改用订阅通知、模板消息，都不可用时等用户下次互动（邀请页始终显示最新进展）。", "Since 2023 WeChat limits customer-service messages: 5 within 48 hours after the follower writes, 3 within a minute after a follow, scan or menu click. Fission merges everything waiting for one inviter into one message; once the allowance is spent it uses a subscription notice, then the template message, and otherwise waits for the follower's next action (the invite page always shows the latest)."),
    ("campaign.one_at_a_time", "同一时间只能进行一个活动，时间重叠的活动无法保存。默认活动只在没有其他活动进行时生效。", "One campaign runs at a time: a campaign whose period overlaps another's cannot be saved. The default campaign only runs while no other campaign does."),
    ("campaign.poster", "海报", "Poster"),
    ("campaign.poster_layout", "海报布局", "Poster layout"),
    ("campaign.poster_preview", "海报预览", "Poster preview"),
    ("campaign.qr", "二维码", "QR code"),
    ("campaign.redeem_in_store", "到店核销", "Redeem in store"),
    ("campaign.revoke_rewards", "撤销邀请时同时收回已发奖励", "Take rewards back when a credit is revoked"),
    ("campaign.revoke_window", "取关撤销期（天）", "Revoke window (days)"),
    ("campaign.revoke_window_hint", "好友在此天数内取关则撤销邀请；0 表示不撤销。", "A friend unfollowing within this many days revokes the credit; 0 = never."),
    ("campaign.reward_hint", "达到档位时发给邀请人。", "Sent to the inviter on reaching a tier."),
    ("campaign.reward_name", "奖励名称", "Reward"),
    ("campaign.reward_placeholder", "例如：10 元优惠券", "e.g. ¥10 coupon"),
    ("campaign.reward_text", "获得奖励通知", "Reward message"),
    ("campaign.rules", "活动规则", "Rules"),
    ("campaign.rules_hint", "展示在粉丝的邀请页上。", "Shown on the followers' invite page."),
    ("campaign.running", "进行中", "Running"),
    ("campaign.save_first", "保存活动后可上传海报背景和兑换码。", "Save the campaign to upload a poster background and reward codes."),
    ("campaign.saved", "已保存。", "Saved."),
    ("campaign.size", "大小", "Size"),
    ("campaign.standby", "待命（其他活动进行中）", "Standing by (another campaign runs)"),
    ("campaign.starts_at", "开始时间", "Starts"),
    ("campaign.stock", "剩余兑换码", "Codes left"),
    ("campaign.subscribe_template_hint", "邀请页会请用户订阅「好友助力时通知我」，每次同意可发一条。", "The invite page asks followers to subscribe (\"tell me when friends join\"); each acceptance allows one notice."),
    ("campaign.subscribe_template_id", "订阅通知模板 ID", "Subscription notice template id"),
    ("campaign.template_hint", "类目模板消息：客服消息和订阅通知都发不了时使用（仅认证服务号）。", "Category template message: used when neither a customer-service message nor a subscription notice can be sent (verified service accounts only)."),
    ("campaign.template_id", "模板消息 ID", "Template message id"),
    ("campaign.threshold", "邀请人数", "Invites"),
    ("campaign.tiers", "奖励档位", "Reward tiers"),
    ("campaign.tiers_hint", "邀请满指定人数即发放；清空一行即删除该档位（已发放过的档位不能删除）。", "Granted on reaching the number of invites; empty a row to remove its tier (not once it was granted)."),
    ("campaign.time_zone", "时间按北京时间（UTC+8）。", "Times are China Standard Time (UTC+8)."),
    ("campaign.upcoming", "未开始", "Upcoming"),
    ("campaign.upload", "上传", "Upload"),
    ("campaign.uploaded", "上传成功。", "Uploaded."),
    ("campaign.uses_codes", "发兑换码", "Hands out codes"),
    ("campaign.welcome_hint", "新粉丝关注时自动回复。", "Replied to a new follower on following."),
    ("campaign.welcome_text", "欢迎语", "Welcome message"),
    ("channels.bad_name", "渠道名称需 1–64 个字符。", "A channel name is 1 to 64 characters."),
    ("channels.create", "创建渠道码", "Create channel code"),
    ("channels.created", "创建时间", "Created"),
    ("channels.download", "下载二维码（印刷尺寸）", "Download QR (print size)"),
    ("channels.intro", "渠道码是永久二维码，用于门店、海报等线下渠道；扫码关注计入渠道，不计入任何粉丝的邀请。", "Channel codes are permanent QR codes for shops, flyers and the like; follows through them count for the channel, never as a follower's invite."),
    ("channels.issue_failed", "生成二维码失败", "Could not issue the QR code"),
    ("channels.name", "渠道名称", "Channel name"),
    ("channels.name_hint", "例如：朝阳门店", "e.g. Downtown shop"),
    ("channels.none", "还没有渠道码。", "No channel codes yet."),
    ("channels.scene", "场景值", "Scene"),
    ("channels.taken", "已有同名渠道。", "A channel with that name exists."),
    ("chart.channel", "渠道", "Channel"),
    ("chart.daily_note", "按关注事件的结果统计；已知的老粉丝重新关注不计入。", "From the outcome of each follow; known followers coming back are not counted."),
    ("chart.daily_title", "每日新增关注", "New followers per day"),
    ("chart.days", "天", "days"),
    ("chart.follows", "关注", "Follows"),
    ("chart.follows_7d_old", "满 7 天的关注", "Follows ≥7 days old"),
    ("chart.funnel_note", "扫码 → 关注 → 7 天后仍关注（仅统计已满 7 天的关注）→ 达到奖励档位的邀请人。", "Scans → follows → still following after 7 days (of follows at least 7 days old) → inviters reaching a tier."),
    ("chart.funnel_title", "转化漏斗", "Funnel"),
    ("chart.k", "K 因子", "K-factor"),
    ("chart.k_note", "截至当天：有效邀请数 ÷ 领取了邀请码的粉丝数。", "Up to each day: standing credited invites ÷ followers who took an invite code."),
    ("chart.k_title", "K 因子", "K-factor"),
    ("chart.other", "其他", "Other"),
    ("chart.range", "时间范围", "Range"),
    ("chart.referred", "邀请", "Referred"),
    ("chart.retained", "7 天后仍关注", "Still following at 7 days"),
    ("chart.scans", "扫码", "Scans"),
    ("chart.tier", "达到奖励", "Reached a tier"),
    ("code.channel.custom", "客服消息", "Customer-service message"),
    ("code.channel.none", "暂无可用渠道", "No channel open"),
    ("code.channel.subscription", "订阅通知", "Subscription notice"),
    ("code.channel.template", "模板消息", "Template message"),
    ("code.channel.waiting", "等待用户互动", "Waiting for the follower"),
    ("code.event.CLICK", "点击菜单", "Menu click"),
    ("code.event.LOCATION", "上报位置", "Location report"),
    ("code.event.SCAN", "扫码（已关注）", "Scan (already following)"),
    ("code.event.TEMPLATESENDJOBFINISH", "模板消息送达回执", "Template message receipt"),
    ("code.event.VIEW", "打开菜单链接", "Menu link opened"),
    ("code.event.event", "事件", "Event"),
    ("code.event.image", "图片消息", "Image message"),
    ("code.event.link", "链接消息", "Link message"),
    ("code.event.location", "位置消息", "Location message"),
    ("code.event.shortvideo", "小视频消息", "Short video message"),
    ("code.event.subscribe", "关注", "Follow"),
    ("code.event.subscribe_msg_change_event", "订阅通知设置变更", "Subscription settings changed"),
    ("code.event.subscribe_msg_popup_event", "订阅通知弹窗选择", "Subscription prompt answered"),
    ("code.event.subscribe_msg_sent_event", "订阅通知送达回执", "Subscription notice receipt"),
    ("code.event.text", "文字消息", "Text message"),
    ("code.event.unsubscribe", "取消关注", "Unfollow"),
    ("code.event.video", "视频消息", "Video message"),
    ("code.event.voice", "语音消息", "Voice message"),
    ("code.job.message", "消息", "Message"),
    ("code.job.notice", "邀请进展通知", "Invitation notice"),
    ("code.job.poster", "海报", "Poster"),
    ("code.outcome.already_credited", "已计过邀请", "Already credited"),
    ("code.outcome.binding_follow", "通过绑定码关注", "Followed through a binding code"),
    ("code.outcome.channel_follow", "渠道码关注", "Channel code follow"),
    ("code.outcome.credited", "邀请成功", "Credited"),
    ("code.outcome.duplicate", "重复推送（已忽略）", "Duplicate (ignored)"),
    ("code.outcome.followed", "关注", "Followed"),
    ("code.outcome.interaction", "互动", "Interaction"),
    ("code.outcome.no_campaign", "没有进行中的活动", "No campaign running"),
    ("code.outcome.not_new", "不是新关注", "Not a new follower"),
    ("code.outcome.poster", "索取海报", "Poster requested"),
    ("code.outcome.recorded", "已记录", "Recorded"),
    ("code.outcome.revoked", "邀请已撤销", "Credit revoked"),
    ("code.outcome.scan", "扫码", "Scan"),
    ("code.outcome.self_invite", "扫了自己的码", "Own code"),
    ("code.outcome.subscriptions", "订阅通知选择", "Subscription choice"),
    ("code.outcome.unknown_scene", "未知二维码", "Unknown code"),
    ("code.outcome.unsubscribed", "取消关注", "Unfollowed"),
    ("code.result.failed", "失败", "Failed"),
    ("code.result.refused", "被微信拒绝", "Refused by WeChat"),
    ("code.result.sent", "已发送", "Sent"),
    ("code.result.waiting", "等待中", "Waiting"),
    ("code.status.failed", "失败", "Failed"),
    ("code.status.pending", "待处理", "Pending"),
    ("code.status.sent", "已完成", "Done"),
    ("code.status.waiting", "等待中", "Waiting"),
    ("common.cancel", "取消", "Cancel"),
    ("common.days", "天", "days"),
    ("common.edit", "编辑", "Edit"),
    ("common.minutes", "分钟", "min"),
    ("common.no", "否", "No"),
    ("common.optional", "选填", "optional"),
    ("common.save", "保存", "Save"),
    ("common.yes", "是", "Yes"),
    ("error.back", "返回运营后台", "Back to the dashboard"),
    ("error.internal", "服务器出错了，已记录，请稍后再试。", "Something failed on our side; it has been logged. Please try again later."),
    ("error.title", "出错了", "Something went wrong"),
    ("form.color_invalid", "颜色格式为 #rrggbb", "Colours are #rrggbb"),
    ("form.end_before_start", "结束时间须晚于开始时间", "The end must be after the start"),
    ("form.fields_keyword", "关键词须是模板里的类型加编号，如 thing1、number2、time3、phrase4", "Keywords are a type and a number, e.g. thing1, number2, time3, phrase4"),
    ("form.fields_missing", "填了模板 ID 就要写模板字段，如 thing1={invitee}", "A template needs its fields, e.g. thing1={invitee}"),
    ("form.fields_placeholder", "占位符只能用 {invitee} {friends} {count} {next} {reward} {time}", "Placeholders are {invitee} {friends} {count} {next} {reward} {time}"),
    ("form.fields_shape", "每行写一个 关键词=内容，同一关键词只写一次", "Write one keyword=value per line, each keyword once"),
    ("form.has_errors", "有内容需要修改，见下方标出的字段。", "Some fields need changes; see below."),
    ("form.layout_invalid", "位置和大小须为合理的整数像素值", "Positions and sizes must be whole pixels in range"),
    ("form.name_invalid", "请填写 1–64 个字符的名称", "Enter a name of 1 to 64 characters"),
    ("form.overlap", "时间与活动", "The period overlaps the campaign"),
    ("form.overlap_fix", "重叠：同一时间只能进行一个活动。请调整时间，或先修改那个活动的时间。", "; one campaign runs at a time. Change the dates, or first change that campaign's."),
    ("form.rules_too_long", "规则最多 5000 字", "Rules are at most 5000 characters"),
    ("form.template_invalid", "模板 ID 只含字母、数字、_ 和 -", "A template id has only letters, digits, _ and -"),
    ("form.text_empty", "请填写文案", "Enter a text"),
    ("form.text_too_long", "文案最多 600 字", "At most 600 characters"),
    ("form.text_unknown_placeholder", "含有此消息不支持的 {占位符}", "Uses a {placeholder} this message does not have"),
    ("form.tier_claim_too_long", "领取说明最多 500 字。", "Claim instructions are at most 500 characters."),
    ("form.tier_duplicate", "两个档位的邀请人数相同", "Two tiers have the same number of invites"),
    ("form.tier_in_use", "该档位已发放过奖励，不能删除", "Rewards were granted for this tier; it cannot be removed"),
    ("form.tier_name", "请填写奖励名称（最多 64 字）", "Enter the reward (at most 64 characters)"),
    ("form.tier_threshold", "邀请人数须为正整数", "The number of invites must be a positive whole number"),
    ("form.time_invalid", "请填写有效的日期和时间", "Enter a valid date and time"),
    ("form.window_invalid", "撤销期为 0–365 天", "The revoke window is 0 to 365 days"),
    ("grant.granted", "已发放", "granted"),
    ("grant.out_of_stock", "兑换码不足", "out of codes"),
    ("grant.revoked", "已收回", "revoked"),
    ("health.attempts", "尝试次数", "Attempts"),
    ("health.calls", "近 24 小时微信接口调用", "WeChat API calls, last 24 h"),
    ("health.channel", "渠道", "Channel"),
    ("health.count", "次数", "Calls"),
    ("health.credits_told", "涉及好友数", "Credits told"),
    ("health.error", "错误", "Error"),
    ("health.errors", "出错", "errors"),
    ("health.event", "事件", "Event"),
    ("health.failed", "失败", "failed"),
    ("health.kind", "类型", "Kind"),
    ("health.last_day", "24 小时", "24 hours"),
    ("health.last_hour", "1 小时", "1 hour"),
    ("health.messages", "给邀请人的通知", "Notices to inviters"),
    ("health.messages_hint", "custom 客服消息 · subscription 订阅通知 · template 模板消息；sent 已发送，waiting 没有可用渠道、等用户下次互动，45047/45015/43101 为微信拒绝（Fission 随即改用下一个渠道）。涉及好友数大于发送数，说明多条合并成了一条。", "custom: customer-service message · subscription: subscription notice · template: template message; sent, waiting (no channel open until the follower acts again), 45047/45015/43101: refused by WeChat (Fission then tried the next channel). More credits than messages means several were coalesced into one."),
    ("health.no_calls", "近 24 小时没有调用记录。", "No calls recorded in the last 24 h."),
    ("health.no_failed", "没有发送失败的消息。", "No failed messages."),
    ("health.outbox", "消息队列", "Outbox"),
    ("health.outcome", "处理结果", "Outcome"),
    ("health.pushes", "最近收到的推送", "Latest pushes received"),
    ("health.quota", "永久二维码额度", "Permanent QR quota"),
    ("health.quota_note", "永久二维码额度见 FISSION_PERMANENT_QUOTA（微信上限 100,000 个）；用完后自动改发临时码。", "Permanent codes are limited by FISSION_PERMANENT_QUOTA (WeChat allows 100,000); after that, temporary codes are issued."),
    ("health.quota_warning", "永久二维码已用超过 80%，请做好改用临时码的准备。", "Over 80% of the permanent QR quota is used: plan for temporary codes."),
    ("health.retried", "已重新加入发送队列。", "Queued again."),
    ("health.retry", "重试", "Retry"),
    ("health.token_age", "已使用", "Age"),
    ("health.token_expires", "剩余有效期", "Expires in"),
    ("health.token_none", "尚未获取", "not fetched yet"),
    ("health.token_refresh", "计划刷新", "Refresh in"),
    ("health.token_source", "获取方式", "Source"),
    ("health.token_state", "状态", "State"),
    ("health.token_unreadable", "无法读取（Redis？）", "unreadable (Redis?)"),
    ("home.credits", "有效邀请", "Standing invites"),
    ("home.current_campaign", "当前活动", "current campaign"),
    ("home.failed_messages", "有发送失败的消息", "Failed messages"),
    ("home.follows_today", "今日关注", "Follows today"),
    ("home.full_board", "完整排行榜", "Full leaderboard"),
    ("home.inviters", "邀请人", "Inviters"),
    ("home.no_campaign", "当前没有进行中的活动。", "No campaign is running."),
    ("home.outbox", "待发消息", "Messages queued"),
    ("home.running", "进行中的活动", "Running campaign"),
    ("home.title", "概览", "Overview"),
    ("home.top", "邀请排行前 10", "Top 10 inviters"),
    ("hooks.add", "添加接收地址", "Add endpoint"),
    ("hooks.answer", "最近结果", "Last answer"),
    ("hooks.delete", "删除", "Delete"),
    ("hooks.delivered", "已送达", "Delivered"),
    ("hooks.endpoints", "接收地址", "Endpoints"),
    ("hooks.event", "事件", "Event"),
    ("hooks.events", "事件类型", "Event types"),
    ("hooks.events_hint", "填 * 表示全部，或用逗号分隔：", "* for all, or a comma-separated list of:"),
    ("hooks.failed", "失败", "Failed"),
    ("hooks.intro", "Webhook 把推荐事件（邀请成功、撤销、发放奖励、扫码、绑定完成等）签名后推送到你的系统；失败会按退避重试一天，同一粉丝的事件按顺序送达。", "Webhooks push referral events (credits, revocations, rewards, scans, completed bindings…) to your systems, signed; failures are retried with backoff for a day, and one follower's events arrive in order."),
    ("hooks.last_attempt", "最近尝试", "Last attempt"),
    ("hooks.log", "投递记录", "Delivery log"),
    ("hooks.no_deliveries", "还没有投递记录。", "No deliveries yet."),
    ("hooks.none", "还没有接收地址。", "No endpoints yet."),
    ("hooks.occurred", "发生时间", "Occurred"),
    ("hooks.pending", "待投递", "Pending"),
    ("hooks.replay", "重新投递", "Replay"),
    ("hooks.replayed", "已重新加入投递队列。", "Queued again."),
    ("hooks.secret", "签名密钥", "Signing secret"),
    ("hooks.send_test", "发送测试事件", "Send test event"),
    ("hooks.status", "状态", "Status"),
    ("hooks.test_queued", "测试事件已加入投递队列。", "Test event queued."),
    ("hooks.url", "接收地址 URL", "Endpoint URL"),
    ("login.busy", "登录请求过多，请稍后再试。", "Too many sign-ins at once; try again in a moment."),
    ("login.password", "密码", "Password"),
    ("login.submit", "登录", "Sign in"),
    ("login.throttled", "失败次数过多，请 15 分钟后再试。", "Too many failed attempts; try again in 15 minutes."),
    ("login.title", "登录运营后台", "Sign in to the dashboard"),
    ("login.username", "用户名", "Username"),
    ("login.wrong", "用户名或密码错误。", "Wrong username or password."),
    ("nav.campaigns", "活动", "Campaigns"),
    ("nav.channels", "渠道码", "Channels"),
    ("nav.charts", "数据图表", "Charts"),
    ("nav.health", "接口状态", "Health"),
    ("nav.home", "概览", "Overview"),
    ("nav.label", "后台导航", "Dashboard"),
    ("nav.leaderboard", "排行榜", "Leaderboard"),
    ("nav.logout", "退出", "Sign out"),
    ("nav.redeem", "核销", "Redeem"),
    ("nav.risk", "风控审核", "Risk review"),
    ("nav.webhooks", "Webhook", "Webhooks"),
    ("pager.next", "下一页", "Next"),
    ("pager.page", "第", "Page"),
    ("pager.prev", "上一页", "Previous"),
    ("ph.code", "兑换码（如有）", "the reward code, if any"),
    ("ph.count", "已邀请人数", "invites so far"),
    ("ph.friends", "本次通知的新好友数", "new friends in this notice"),
    ("ph.invitee", "新好友：昵称，或“一位新朋友”“小红等 3 位好友”", "the new friends: a nickname, or 一位新朋友 (a new friend), 小红等 3 位好友 (小红 and 2 more)"),
    ("ph.inviter", "邀请人：“你的好友小明”，未授权昵称时为“一位好友”（整句可直接用，不必加空格）", "the inviter: 你的好友小明 (your friend 小明), or 一位好友 (a friend) while they have not shared their nickname; a whole phrase, no spaces needed"),
    ("ph.next", "距下一档奖励的提示", "how far to the next reward"),
    ("ph.reward", "奖励名称", "the reward's name"),
    ("ph.time", "发送时间", "time sent"),
    ("redeem.already_at", "已于", "Already redeemed at"),
    ("redeem.already_by", "由", "by"),
    ("redeem.already_tail", "核销", ""),
    ("redeem.campaign", "活动", "Campaign"),
    ("redeem.done", "核销成功。", "Redeemed."),
    ("redeem.follower", "粉丝", "Follower"),
    ("redeem.not_granted", "这份奖励已收回或未发放，不能核销。", "This reward was taken back or never handed out; it cannot be redeemed."),
    ("redeem.not_in_store", "这份奖励不需要到店核销。", "This reward is not redeemed in store."),
    ("redeem.once_hint", "请核对粉丝出示的奖励后再核销，每份奖励只能核销一次。", "Check the reward the follower shows you before redeeming it; each reward can be redeemed once."),
    ("redeem.reward", "奖励", "Reward"),
    ("redeem.start_intro", "用手机相机或微信「扫一扫」扫描粉丝邀请页上的核销二维码，打开的页面会显示奖励和粉丝，核对后点「核销」。", "Scan the redemption code on the follower's invite page with the phone's camera or WeChat's scanner; the page it opens shows the reward and the follower; check them, then press Redeem."),
    ("redeem.submit", "核销", "Redeem"),
    ("redeem.title", "核销奖励", "Redeem a reward"),
    ("risk.action.approve", "通过", "Approve"),
    ("risk.action.block", "拉黑", "Block"),
    ("risk.action.flag", "标记", "Flag"),
    ("risk.action.hold", "暂扣奖励", "Hold rewards"),
    ("risk.action.reject", "驳回", "Reject"),
    ("risk.action.unblock", "解除拉黑", "Unblock"),
    ("risk.apply", "执行", "Apply"),
    ("risk.automatic", "系统自动", "Automatic"),
    ("risk.block_per_minute", "自动拉黑阈值（60 秒内邀请数超过）", "Auto-block above (credits within 60 s)"),
    ("risk.block_text", "拉黑时发给邀请人的消息", "Message sent to a blocked inviter"),
    ("risk.bulk", "对选中的邀请人", "For the selected inviters"),
    ("risk.burst_min", "单码突增：60 秒内经同一邀请码关注至少（人，0 为不启用）", "Scene burst: at least this many follows through one code within 60 s (0 = off)"),
    ("risk.burst_percent", "单码突增：且占全号同期关注的比例至少（%）", "Scene burst: making at least this share of the account's follows that minute (%)"),
    ("risk.cancelled", "已作废", "Cancelled"),
    ("risk.decision", "决定", "Decision"),
    ("risk.decisions", "处理记录", "Decisions"),
    ("risk.done", "已处理", "Done"),
    ("risk.empty", "没有需要审核的邀请人。", "No inviter needs review."),
    ("risk.evidence", "证据", "Evidence"),
    ("risk.friends", "邀请的好友", "Friends brought"),
    ("risk.intro", "被标记、暂扣或拉黑的邀请人。通过会补发他们已达到的奖励；拉黑会作废他们的邀请并收回奖励。", "Inviters flagged, held or blocked. Approving grants the rewards they reached; blocking cancels their credits and takes their rewards back."),
    ("risk.inviter", "邀请人", "Inviter"),
    ("risk.left", "撤销期内取关", "Left within the window"),
    ("risk.left_min_friends", "取关比例至少从多少位好友起计", "Leaving share counts from (friends)"),
    ("risk.left_percent", "取关比例阈值（%）", "Leaving share threshold (%)"),
    ("risk.operator", "操作人", "Operator"),
    ("risk.pending", "待审核", "Pending"),
    ("risk.per_hour", "每小时邀请数超过", "Credits per hour above"),
    ("risk.per_minute", "60 秒内邀请数超过", "Credits within 60 s above"),
    ("risk.policy", "策略", "Policy"),
    ("risk.policy.block", "暂扣，超过硬阈值自动拉黑", "Hold, and auto-block above the hard threshold"),
    ("risk.policy.flag", "仅标记", "Flag only"),
    ("risk.policy.hold", "暂扣奖励待审核", "Hold rewards for review"),
    ("risk.policy_error", "请检查：阈值为 1 到 100 之间的整数，延迟发放为 0 到 90 天，消息不超过 600 字。", "Check the values: thresholds are whole numbers from 1 to 100, the reward delay 0 to 90 days, the message at most 600 characters."),
    ("risk.policy_title", "风控策略", "Risk policy"),
    ("risk.reward_delay_days", "奖励延迟发放（天，0 为立即发放；到期时好友仍关注才发放）", "Delay rewards (days, 0 = at once; granted only if the friends still follow then)"),
    ("risk.signal", "信号", "Signal"),
    ("risk.signal.chain_burst", "新关注即高速邀请（连锁）", "Chain: a new friend inviting at the burst rate"),
    ("risk.signal.credits_per_hour", "每小时邀请过快", "Credits per hour"),
    ("risk.signal.credits_per_minute", "60 秒内邀请过快", "Credits within 60 s"),
    ("risk.signal.friends_left_percent", "好友取关比例高", "Share of friends who left"),
    ("risk.signal.friends_silent_percent", "好友关注后从不互动", "Friends who never interact"),
    ("risk.signal.other", "其他信号", "Other signal"),
    ("risk.signal.scene_burst", "全号冷清时单码突增（占同期关注 %）", "Burst on one code while the account is quiet (% of its follows)"),
    ("risk.signals", "触发的信号", "Signals fired"),
    ("risk.silent", "关注后从未互动的好友", "Friends who never interacted after following"),
    ("risk.silent_percent", "从不互动的好友比例阈值（%，好友关注满一天后计；0 为不启用）", "Silent friends threshold (%, of friends older than a day; 0 = off)"),
    ("risk.skipped", "不适用", "Not applicable"),
    ("risk.status.blocked", "已拉黑", "Blocked"),
    ("risk.status.flagged", "已标记", "Flagged"),
    ("risk.status.held", "奖励暂扣", "Held"),
    ("risk.status.ok", "正常", "OK"),
    ("risk.threshold", "阈值", "Threshold"),
    ("risk.timeline", "邀请时间线", "Timeline of credits"),
    ("risk.value", "数值", "Value"),
    ("risk.waiting", "待发奖励", "Rewards waiting"),
    ("staff.refused", "这是核销员账号，只能核销奖励（扫描粉丝邀请页上的核销二维码）。", "This is a staff account: it can only redeem rewards (scan the code on a follower's invite page)."),
    ("upload.bad_code", "有一行不是兑换码（最长 128 字符，不含控制字符）", "A line is not a code (at most 128 characters, no control characters)"),
    ("upload.bad_size", "图片宽和高须在 200–6000 像素之间", "The image's width and height must be 200–6000 pixels"),
    ("upload.empty", "请选择文件", "Choose a file"),
    ("upload.no_codes", "没有找到兑换码", "No codes found"),
    ("upload.not_image", "只接受 PNG 或 JPEG 图片", "Only PNG or JPEG images"),
    ("upload.not_utf8", "文件须为 UTF-8 文本", "The file must be UTF-8 text"),
    ("upload.too_large", "文件太大", "The file is too large"),
    ("user.campaign", "活动", "Campaign"),
    ("user.code", "兑换码", "Code"),
    ("user.counts", "有效邀请（按活动）", "Standing invites by campaign"),
    ("user.credited", "有效", "credited"),
    ("user.credited_at", "邀请时间", "Credited"),
    ("user.followed_since", "最早关注", "Following since"),
    ("user.imported", "导入的老粉丝", "Imported follower"),
    ("user.invited_by", "邀请人", "Invited by"),
    ("user.invitees", "邀请的好友", "Invitees"),
    ("user.no_invites", "还没有邀请记录。", "No invites yet."),
    ("user.no_nickname", "（无昵称）", "(no nickname)"),
    ("user.none", "无", "None"),
    ("user.profile", "资料", "Profile"),
    ("user.revocations", "撤销记录", "Revocations"),
    ("user.revoked", "已撤销", "revoked"),
    ("user.revoked_at", "撤销时间", "Revoked"),
    ("user.reward", "奖励", "Reward"),
    ("user.rewards", "奖励", "Rewards"),
    ("user.status", "状态", "Status"),
    ("user.subscribed", "关注中", "Following"),
    ("user.time", "时间", "Time"),
    ("user.timeline", "事件时间线", "Events"),
    ("user.unknown", "未知粉丝", "Unknown follower"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_only_when_preferred() {
        assert_eq!(Lang::from_accept_language(""), Lang::Zh);
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::Zh
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("fr-FR,en;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("de-DE"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("zh;q=0.5,en;q=0.7"), Lang::En);
    }

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in MESSAGES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} / {}", pair[0].0, pair[1].0);
        }
    }

    /// Every `f.t("key")` in the templates and every message key in the handlers exists.
    #[test]
    fn every_key_used_is_in_the_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        for dir in ["templates/admin", "src/routes/admin"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                sources.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
            }
        }
        let prefixes = [
            "board.",
            "brand.",
            "campaign.",
            "channels.",
            "chart.",
            "common.",
            "form.",
            "grant.",
            "health.",
            "home.",
            "hooks.",
            "login.",
            "nav.",
            "pager.",
            "ph.",
            "risk.",
            "upload.",
            "user.",
        ];
        let mut checked = 0;
        for source in &sources {
            for piece in source.split('"').skip(1).step_by(2) {
                let is_key = prefixes
                    .iter()
                    .any(|p| piece.starts_with(p) && piece.len() > p.len())
                    && piece.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'
                    });
                if is_key {
                    checked += 1;
                    assert_ne!(Msg::get(Lang::En, piece), "??", "missing message {piece}");
                }
            }
        }
        assert!(checked > 100, "only {checked} keys found");
    }

    #[test]
    fn every_stored_code_has_words() {
        use crate::db::outbox::{JobKind, JobStatus};
        use crate::domain::Outcome;
        let mut codes: Vec<(&str, &str)> = Outcome::ALL
            .iter()
            .map(|o| ("outcome", o.as_str()))
            .collect();
        for kind in [JobKind::Message, JobKind::Poster, JobKind::Notice] {
            codes.push(("job", kind.as_str()));
        }
        for status in [
            JobStatus::Pending,
            JobStatus::Waiting,
            JobStatus::Sent,
            JobStatus::Failed,
        ] {
            codes.push(("status", status.as_str()));
        }
        for channel in ["custom", "subscription", "template", "waiting", "none"] {
            codes.push(("channel", channel));
        }
        for event in [
            "subscribe",
            "unsubscribe",
            "SCAN",
            "CLICK",
            "VIEW",
            "text",
            "event",
        ] {
            codes.push(("event", event));
        }
        for (kind, raw) in codes {
            for lang in [Lang::Zh, Lang::En] {
                assert_ne!(code(lang, kind, raw), raw, "no words for {kind} {raw}");
            }
        }
        assert_eq!(code(Lang::Zh, "result", "45047"), "被微信拒绝 (45047)");
        assert_eq!(code(Lang::En, "result", "sent"), "Sent");
        assert_eq!(code(Lang::En, "event", "NEW_EVENT"), "NEW_EVENT");
    }
}
