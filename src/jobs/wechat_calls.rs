//! Copies this process's WeChat API call counters (Prometheus, per process) into the shared
//! `wechat_api_calls` table every few seconds, so the dashboard shows every instance's calls.
//! Only the increase since the last flush is written: one batched statement per interval,
//! never a write per call. A failed write is retried with the next flush; a crash loses at
//! most one interval.

use std::collections::HashMap;
use std::time::Duration;

use prometheus::core::Collector;
use tokio::sync::watch;

use crate::db;
use crate::state::AppState;

const INTERVAL: Duration = Duration::from_secs(10);

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut written: HashMap<(String, i64), u64> = HashMap::new();
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => false,
            _ = shutdown.changed() => true,
        };
        if let Err(e) = flush(&state, &mut written).await {
            tracing::warn!(error = ?e, "could not record WeChat API call counts");
        }
        if stop {
            return;
        }
    }
}

/// Writes what the counters gained since `written`, then remembers the new totals.
pub async fn flush(
    state: &AppState,
    written: &mut HashMap<(String, i64), u64>,
) -> anyhow::Result<()> {
    let now = totals(state);
    let mut batch = (Vec::new(), Vec::new(), Vec::new());
    for ((api, errcode), total) in &now {
        let gained =
            total.saturating_sub(written.get(&(api.clone(), *errcode)).copied().unwrap_or(0));
        if gained > 0 {
            batch.0.push(api.clone());
            batch.1.push(*errcode);
            batch.2.push(i64::try_from(gained).unwrap_or(i64::MAX));
        }
    }
    if !batch.0.is_empty() {
        db::wechat_calls::add(&state.pool, &batch.0, &batch.1, &batch.2).await?;
    }
    *written = now;
    Ok(())
}

fn totals(state: &AppState) -> HashMap<(String, i64), u64> {
    let mut totals = HashMap::new();
    for family in state.metrics.wechat_calls.collect() {
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
            };
            let (Some(api), Some(errcode)) = (label("api"), label("errcode")) else {
                continue;
            };
            let Ok(errcode) = errcode.parse::<i64>() else {
                continue;
            };
            totals.insert((api, errcode), metric.get_counter().get_value() as u64);
        }
    }
    totals
}
