//! Images in object storage (`FISSION_STORAGE`: `file://PATH` or `s3://BUCKET/PREFIX`), keyed
//! by their content so a stored object never changes and can be cached forever.

use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use sha1::{Digest, Sha1};

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Storage {
    pub fn from_url(url: &str) -> anyhow::Result<Storage> {
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating storage directory {dir}"))?;
            let store = LocalFileSystem::new_with_prefix(dir)
                .with_context(|| format!("opening storage directory {dir}"))?;
            return Ok(Storage {
                store: Arc::new(store),
                prefix: String::new(),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("FISSION_STORAGE s3:// URL needs a bucket name");
            }
            // Credentials, region and endpoint (COS, OSS, MinIO) come from the usual AWS_* variables.
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .context("configuring S3 storage")?;
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(Storage {
                store: Arc::new(store),
                prefix,
            });
        }
        bail!("FISSION_STORAGE must start with file:// or s3://, got {url:?}")
    }

    /// Stores `data` under `{kind}/{sha1}.{ext}` and returns that key. Storing the same bytes
    /// twice is harmless: the key and the content are the same.
    pub async fn put(&self, kind: &str, ext: &str, data: Vec<u8>) -> anyhow::Result<String> {
        let key = format!("{kind}/{}.{ext}", hex::encode(Sha1::digest(&data)));
        self.put_at(&key, data).await?;
        Ok(key)
    }

    /// Stores under a key the caller derived from the inputs (e.g. a poster's parameters).
    pub async fn put_at(&self, key: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from(data))
            .await
            .with_context(|| format!("storing {key}"))?;
        Ok(())
    }

    /// The object, or `None` when there is no such key.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(object) => Ok(Some(
                object
                    .bytes()
                    .await
                    .with_context(|| format!("reading {key}"))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {key}")),
        }
    }

    fn path(&self, key: &str) -> anyhow::Result<Path> {
        // Keys come from Fission itself, but a served key arrives in a URL: refuse traversal.
        if key.is_empty()
            || key
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            bail!("invalid storage key {key:?}");
        }
        Path::parse(format!("{}{key}", self.prefix)).context("invalid storage key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_storage_round_trips_by_content_key() {
        let dir = std::env::temp_dir().join(format!("fission-storage-{}", uuid::Uuid::new_v4()));
        let storage = Storage::from_url(&format!("file://{}", dir.display())).unwrap();
        let key = storage.put("qr", "png", b"hello".to_vec()).await.unwrap();
        assert_eq!(key, "qr/aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d.png");
        assert_eq!(
            storage.get(&key).await.unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(storage.get("qr/missing.png").await.unwrap().is_none());
        assert!(storage.get("../etc/passwd").await.is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(Storage::from_url("ftp://x").is_err());
        assert!(Storage::from_url("s3://").is_err());
    }
}
