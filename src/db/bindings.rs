//! `bindings`: binding codes (a temporary string-scene code carrying a caller's payload). They
//! are completed by the push path (`webhooks::record_batch`), in the batch that records the
//! scan.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BindingRow {
    pub id: Uuid,
    pub scene_str: String,
    pub payload: Value,
    pub ticket: String,
    pub url: String,
    pub image_key: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub openid: Option<String>,
    pub event: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
}

pub struct NewBinding<'a> {
    pub id: Uuid,
    pub scene_str: &'a str,
    pub payload: &'a Value,
    pub ticket: &'a str,
    pub url: &'a str,
    pub image_key: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(pool: &PgPool, b: &NewBinding<'_>) -> sqlx::Result<BindingRow> {
    sqlx::query_as(
        "INSERT INTO bindings (id, scene_str, payload, ticket, url, image_key, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, scene_str, payload, ticket, url, image_key, expires_at, created_at,
                   openid, event, completed_at",
    )
    .bind(b.id)
    .bind(b.scene_str)
    .bind(b.payload)
    .bind(b.ticket)
    .bind(b.url)
    .bind(b.image_key)
    .bind(b.expires_at)
    .fetch_one(pool)
    .await
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<BindingRow>> {
    sqlx::query_as(
        "SELECT id, scene_str, payload, ticket, url, image_key, expires_at, created_at,
                openid, event, completed_at
         FROM bindings WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}
