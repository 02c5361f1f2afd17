//! The `fission` command line: serve (default), migrate, import-followers, admin, simulate.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use fission::config::Settings;
use fission::simulate::{self, SimulatedEvent};
use fission::startup::{self, Application};
use fission::{auth, db, referral, telemetry};

#[derive(Parser)]
#[command(
    name = "fission",
    version,
    about = "Self-hosted referral platform for WeChat Official Accounts"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if missing, migrate, and serve HTTP with the background workers.
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Recompute the leaderboard from the referral ledger and report the rows it changed.
    RebuildStats {
        /// Only this campaign (all campaigns when omitted).
        #[arg(long)]
        campaign: Option<i64>,
    },
    /// Record every current follower as "already followed" (resumable).
    ImportFollowers {
        /// Start from the first page even if an earlier run was interrupted.
        #[arg(long)]
        restart: bool,
    },
    /// Dashboard accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Sign and post a WeChat event to a running instance's callback.
    Simulate {
        #[command(subcommand)]
        event: SimulateCommand,
    },
}

#[derive(Subcommand)]
enum SimulateCommand {
    /// A follow (through a code when --scene is given).
    Subscribe(SimulateArgs),
    /// An existing follower scanning a code.
    Scan(SimulateArgs),
    /// An unfollow.
    Unsubscribe(SimulateArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a dashboard account (or set a new password for an existing one); the password is
    /// read from the first line of standard input.
    AddUser {
        #[arg(long)]
        username: String,
        /// `staff`: the account may only redeem rewards (scan followers' redemption codes).
        /// A new account is an admin by default; an existing one keeps its role unless given.
        #[arg(long, value_parser = ["admin", "staff"])]
        role: Option<String>,
    },
}

#[derive(Args)]
struct SimulateArgs {
    #[arg(long)]
    openid: String,
    /// Scene of the code (e.g. 123, or a string scene).
    #[arg(long)]
    scene: Option<String>,
    /// Base URL of the instance; defaults to FISSION_PUBLIC_URL or the bind address.
    #[arg(long)]
    target: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fission: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log_filter, settings.log_format);
    let result =
        actix_web::rt::System::new().block_on(run(cli.command.unwrap_or(Command::Serve), settings));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fission: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?;
        }
        Command::Migrate => {
            let pool = db::connect(&settings.database_url, 2, db::Planning::Fresh).await?;
            db::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::RebuildStats { campaign } => {
            let pool = db::connect(&settings.database_url, 2, db::Planning::Fresh).await?;
            db::migrate(&pool).await?;
            let changes =
                db::referrals::rebuild_stats(&pool, campaign.map(fission::domain::CampaignId))
                    .await?;
            for c in &changes {
                let show = |n: Option<i32>, at: Option<chrono::DateTime<chrono::Utc>>| match (n, at)
                {
                    (Some(n), Some(at)) => format!("{n} (reached {})", at.to_rfc3339()),
                    _ => "0".to_string(),
                };
                println!(
                    "campaign {} {}: {} -> {}",
                    c.campaign_id,
                    c.openid,
                    show(c.invites_before, c.reached_before),
                    show(c.invites_after, c.reached_after)
                );
            }
            println!(
                "{} leaderboard row(s) corrected{}",
                changes.len(),
                campaign.map_or(String::new(), |id| format!(" in campaign {id}"))
            );
        }
        Command::ImportFollowers { restart } => {
            if settings.sandbox {
                anyhow::bail!(
                    "import-followers needs a real account: set WECHAT_APPID and WECHAT_SECRET"
                );
            }
            let public_url = settings.public_url.clone().unwrap_or_default();
            let state = startup::connect(settings, &public_url).await?;
            let report = referral::import::import_followers(&state, restart, |r| {
                eprintln!(
                    "page {}: {} followers recorded of {}",
                    r.pages, r.followers, r.total
                );
            })
            .await?;
            println!(
                "imported {} followers in {} pages",
                report.followers, report.pages
            );
        }
        Command::Admin {
            command: AdminCommand::AddUser { username, role },
        } => {
            let role = role.as_deref().and_then(db::admin::Role::parse);
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']).to_string();
            let pool = db::connect(&settings.database_url, 2, db::Planning::Fresh).await?;
            db::migrate(&pool).await?;
            auth::add_user(&pool, &username, password.into(), role).await?;
            match role {
                Some(role) => println!("account {username} saved ({})", role.as_str()),
                None => println!("account {username} saved"),
            }
        }
        Command::Simulate { event } => {
            let (kind, args) = match event {
                SimulateCommand::Subscribe(a) => (SimulatedEvent::Subscribe, a),
                SimulateCommand::Scan(a) => (SimulatedEvent::Scan, a),
                SimulateCommand::Unsubscribe(a) => (SimulatedEvent::Unsubscribe, a),
            };
            let target = args
                .target
                .or_else(|| settings.public_url.clone())
                .unwrap_or_else(|| format!("http://{}", settings.bind));
            let (status, body) = simulate::send(
                &settings,
                kind,
                &args.openid,
                args.scene.as_deref(),
                &target,
            )
            .await?;
            println!("{status} {body}");
            if !(200..300).contains(&status) {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
