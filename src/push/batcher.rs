//! Group commit. Requests hand their push to a queue and wait; a few writers each take what has
//! gathered (at most `max` pushes) and apply it in one transaction, then answer every waiting
//! request at once. A push is taken at once unless pushes are arriving in crowds — recent
//! batches held `COMPANY` pushes or more — and another batch is being written: then the batch
//! waits at most `wait` for company.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::time::Instant;

use super::apply::{self, Applied, RecordedMeanwhile};
use super::campaigns::CampaignCache;
use super::incoming::Incoming;
use super::Decided;
use crate::telemetry::Metrics;

/// Attempts at one batch when it loses a race (deadlock, serialization failure, a push
/// recorded meanwhile) before it is split up.
const ATTEMPTS: u32 = 5;

/// Batches averaging this many pushes mean pushes arrive in crowds: a batch is then worth
/// holding back (while another is written) for more to join it. Below it, waiting would only
/// add to each push's latency — at a steady 1,000 pushes/s a batch takes a push or two.
const COMPANY: u32 = 4;

#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max: usize,
    pub wait: Duration,
    pub writers: usize,
    /// How long a new notice to an inviter waits for more news to join it (friends following
    /// in a burst are told in one message).
    pub notice_delay: Duration,
}

struct Waiting {
    push: Incoming,
    answer: oneshot::Sender<anyhow::Result<Decided>>,
}

struct Writers {
    pool: PgPool,
    campaigns: CampaignCache,
    queue: Mutex<mpsc::UnboundedReceiver<Waiting>>,
    busy: AtomicUsize,
    /// The recent batches' average size, in sixteenths of a push (a moving average).
    recent_size: AtomicU32,
    limits: BatchLimits,
    outbox_wake: Arc<Notify>,
    metrics: Metrics,
}

/// Where requests hand in their pushes. Cloning shares the writers; they stop when the last
/// clone is dropped, after the pushes already handed in.
#[derive(Clone)]
pub struct PushQueue {
    sender: mpsc::UnboundedSender<Waiting>,
}

impl PushQueue {
    pub fn start(
        pool: PgPool,
        limits: BatchLimits,
        outbox_wake: Arc<Notify>,
        metrics: Metrics,
    ) -> PushQueue {
        let (sender, receiver) = mpsc::unbounded_channel();
        let writers = Arc::new(Writers {
            pool,
            campaigns: CampaignCache::default(),
            queue: Mutex::new(receiver),
            busy: AtomicUsize::new(0),
            recent_size: AtomicU32::new(0),
            limits,
            outbox_wake,
            metrics,
        });
        for _ in 0..limits.writers.max(1) {
            tokio::spawn(write_batches(writers.clone()));
        }
        PushQueue { sender }
    }

    /// Applies the push (in some batch) and returns what it came to, once that is durable.
    pub async fn submit(&self, push: Incoming) -> anyhow::Result<Decided> {
        let (answer, answered) = oneshot::channel();
        self.sender
            .send(Waiting { push, answer })
            .map_err(|_| anyhow::anyhow!("the push writers have stopped"))?;
        answered
            .await
            .map_err(|_| anyhow::anyhow!("the push writer stopped before answering"))?
    }
}

async fn write_batches(writers: Arc<Writers>) {
    // This writer's own rows of the account's follow counts: writers (here and on other
    // instances) never wait for each other there.
    let id = rand::random::<i16>();
    while let Some(batch) = gather(&writers).await {
        writers.busy.fetch_add(1, Ordering::SeqCst);
        write(&writers, id, batch).await;
        writers.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The next batch: whatever is queued (up to `max`); if pushes arrive in crowds, other batches
/// are being written and this one is not full, whatever else arrives within `wait`.
async fn gather(writers: &Writers) -> Option<Vec<Waiting>> {
    let limits = writers.limits;
    let mut queue = writers.queue.lock().await;
    let mut batch = vec![queue.recv().await?];
    while batch.len() < limits.max {
        match queue.try_recv() {
            Ok(w) => batch.push(w),
            Err(_) => break,
        }
    }
    let crowded = writers.recent_size.load(Ordering::Relaxed) >= COMPANY * 16;
    if batch.len() < limits.max
        && !limits.wait.is_zero()
        && crowded
        && writers.busy.load(Ordering::SeqCst) > 0
    {
        let until = Instant::now() + limits.wait;
        while batch.len() < limits.max {
            match tokio::time::timeout_at(until, queue.recv()).await {
                Ok(Some(w)) => batch.push(w),
                _ => break,
            }
        }
    }
    Some(batch)
}

async fn write(writers: &Writers, id: i16, batch: Vec<Waiting>) {
    let (pushes, answers): (Vec<Incoming>, Vec<_>) =
        batch.into_iter().map(|w| (w.push, w.answer)).unzip();
    writers.metrics.push_batch.observe(pushes.len() as f64);
    // Each batch moves the average an eighth of the way to its own size.
    let size = pushes.len().min(u32::MAX as usize / 16) as u32 * 16;
    let _ = writers
        .recent_size
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
            Some(avg - avg / 8 + size / 8)
        });
    match apply_with_retries(writers, id, &pushes).await {
        Ok(applied) => answer(writers, applied, answers),
        Err(e) if pushes.len() == 1 => {
            if let Some(answer) = answers.into_iter().next() {
                let _ = answer.send(Err(e));
            }
        }
        Err(e) => {
            // One bad push must not fail its batch-mates: apply each on its own.
            tracing::warn!(
                error = format!("{e:#}"),
                size = pushes.len(),
                "a batch failed; applying its pushes one by one"
            );
            for (push, answer) in pushes.into_iter().zip(answers) {
                let one = [push];
                match apply_with_retries(writers, id, &one).await {
                    Ok(applied) => self::answer(writers, applied, vec![answer]),
                    Err(e) => {
                        let _ = answer.send(Err(e));
                    }
                }
            }
        }
    }
}

fn answer(
    writers: &Writers,
    applied: Applied,
    answers: Vec<oneshot::Sender<anyhow::Result<Decided>>>,
) {
    if applied.queued {
        // Only now can the worker see the messages this batch queued.
        writers.outbox_wake.notify_one();
    }
    let Applied {
        outcomes,
        replies,
        poster_jobs,
        ..
    } = applied;
    for (((answer, outcome), reply), poster_job) in answers
        .into_iter()
        .zip(outcomes)
        .zip(replies)
        .zip(poster_jobs)
    {
        // A request that gave up waiting has nobody to answer; its push is recorded all the same.
        let _ = answer.send(Ok(Decided {
            outcome,
            reply,
            poster_job,
        }));
    }
}

async fn apply_with_retries(
    writers: &Writers,
    id: i16,
    pushes: &[Incoming],
) -> anyhow::Result<Applied> {
    let mut attempt = 1;
    loop {
        match apply::apply(
            &writers.pool,
            &writers.campaigns,
            pushes,
            apply::Writer {
                id,
                notice_delay: writers.limits.notice_delay,
            },
        )
        .await
        {
            Ok(applied) => return Ok(applied),
            Err(e) if attempt < ATTEMPTS && lost_a_race(&e) => {
                tracing::debug!(error = format!("{e:#}"), attempt, "retrying a batch");
                let jitter = rand::random::<u64>() % (5 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Deadlocks and serialization failures (another transaction won; try again) and pushes
/// recorded meanwhile by another instance.
fn lost_a_race(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.is::<RecordedMeanwhile>()) || crate::db::lost_a_race(e)
}
