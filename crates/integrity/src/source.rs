//! Where validation reads objects from: a local copy of the bucket, or S3 (implemented in the
//! `aws` crate, which owns the SDK). The validator only needs a listing (the [`Inventory`]) and
//! two reads; both are blocking calls made from the validator's worker threads.

use std::path::{Path, PathBuf};

use model::{ObjectKind, TrailKey};

use crate::digest::SignatureMetadata;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The object does not exist (S3 NoSuchKey / 404, or no such file).
    #[error("no such object")]
    NotFound,
    /// Anything else: access denied, network, I/O. Validation cannot conclude and stops.
    #[error("{0}")]
    Other(String),
}

/// Reads objects. `bucket` is the bucket a digest names; a local copy has one bucket and
/// ignores it (the contract: the bucket name in digests is not compared with the directory).
pub trait ObjectReader: Sync {
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, FetchError>;
    /// A digest object and its signature metadata.
    fn get_digest(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, SignatureMetadata), FetchError>;
    /// The bucket being validated, when it has a name worth comparing with what digests say.
    fn bucket(&self) -> Option<&str>;
}

/// One listed object that is a CloudTrail log or digest.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub parsed: TrailKey,
    pub size: u64,
}

/// The log and digest objects of the period being validated. Other objects (Insights files,
/// sidecars, S3 test objects) are not part of integrity validation and are left out.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub objects: Vec<Listed>,
}

impl Inventory {
    /// Adds `key` when it is a log or digest key; returns whether it was added.
    pub fn push(&mut self, key: String, size: u64) -> bool {
        match TrailKey::parse(&key) {
            Ok(parsed) if matches!(parsed.kind, ObjectKind::Log | ObjectKind::Digest) => {
                self.objects.push(Listed { key, parsed, size });
                true
            }
            _ => false,
        }
    }
}

/// A directory holding a copy of the trail's bucket: object keys are paths relative to it;
/// a digest's signature metadata is in the sidecar `KEY.metadata.json`.
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: &Path) -> LocalDir {
        LocalDir { root: root.to_path_buf() }
    }

    /// Every log and digest under the directory.
    pub fn inventory(&self) -> std::io::Result<Inventory> {
        let mut inventory = Inventory::default();
        for entry in walkdir::WalkDir::new(&self.root).follow_links(true) {
            let entry = entry.map_err(std::io::Error::other)?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else { continue };
            let Some(rel) = rel.to_str() else { continue };
            let key = rel.replace(std::path::MAIN_SEPARATOR, "/");
            if key.ends_with(".json.gz") {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                inventory.push(key, size);
            }
        }
        inventory.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(inventory)
    }

    fn path(&self, key: &str) -> Result<PathBuf, FetchError> {
        // Keys come from digests, which an attacker may have written: never leave the root.
        if key.split('/').any(|s| s == ".." || s.is_empty()) || key.starts_with('/') {
            return Err(FetchError::NotFound);
        }
        Ok(self.root.join(key))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, FetchError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::NotFound,
        _ => FetchError::Other(format!("{}: {e}", path.display())),
    })
}

impl ObjectReader for LocalDir {
    fn get(&self, _bucket: &str, key: &str) -> Result<Vec<u8>, FetchError> {
        read(&self.path(key)?)
    }

    fn get_digest(&self, _bucket: &str, key: &str) -> Result<(Vec<u8>, SignatureMetadata), FetchError> {
        let path = self.path(key)?;
        let bytes = read(&path)?;
        let sidecar = PathBuf::from(format!("{}.metadata.json", path.display()));
        let metadata = match read(&sidecar) {
            Ok(text) => SignatureMetadata::from_sidecar(&text).unwrap_or_default(),
            Err(FetchError::NotFound) => SignatureMetadata::default(),
            Err(e) => return Err(e),
        };
        Ok((bytes, metadata))
    }

    fn bucket(&self) -> Option<&str> {
        None
    }
}
