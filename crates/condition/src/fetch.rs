//! Getting a creative's source file onto local disk. The server plugs in its guarded outbound HTTP client
//! (allow-lists, size caps, timeouts) through [`SourceFetcher`]; [`LocalFetcher`] reads files under a root
//! directory, for tests, benchmarks and operators conditioning from a local library.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Copies a source file to local disk.
#[async_trait::async_trait]
pub trait SourceFetcher: Send + Sync + 'static {
    /// Writes the file at `uri` to `dest` and returns its size; refuses ([`Error::Fetch`]) a file larger than
    /// `max_bytes`, leaving `dest` in any state (the caller removes it).
    async fn fetch(&self, uri: &str, dest: &Path, max_bytes: u64) -> Result<u64>;
}

/// Reads `file://` URIs and plain paths, confined to a root directory.
#[derive(Debug, Clone)]
pub struct LocalFetcher {
    root: PathBuf,
}

impl LocalFetcher {
    /// Serves files under `root` (and nothing outside it, whatever `..` or links a URI holds).
    pub fn new(root: impl Into<PathBuf>) -> LocalFetcher {
        LocalFetcher { root: root.into() }
    }

    fn resolve(&self, uri: &str) -> Result<PathBuf> {
        let err = |reason: String| Error::Fetch {
            uri: uri.to_owned(),
            reason,
        };
        let raw = uri.strip_prefix("file://").unwrap_or(uri);
        if raw.contains("://") {
            return Err(err("not a file URI".into()));
        }
        let decoded = percent_decode(raw).ok_or_else(|| err("bad percent-encoding".into()))?;
        let candidate = Path::new(&decoded);
        let path = if candidate.is_absolute() {
            candidate.to_path_buf()
        } else {
            self.root.join(candidate)
        };
        let root = self
            .root
            .canonicalize()
            .map_err(|e| err(format!("root: {e}")))?;
        let real = path.canonicalize().map_err(|e| err(e.to_string()))?;
        if !real.starts_with(&root) {
            return Err(err("outside the source root".into()));
        }
        Ok(real)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[async_trait::async_trait]
impl SourceFetcher for LocalFetcher {
    async fn fetch(&self, uri: &str, dest: &Path, max_bytes: u64) -> Result<u64> {
        let src = self.resolve(uri)?;
        let len = tokio::fs::metadata(&src)
            .await
            .map_err(Error::io(&src))?
            .len();
        if len > max_bytes {
            return Err(Error::Fetch {
                uri: uri.to_owned(),
                reason: format!("{len} bytes exceeds the cap of {max_bytes}"),
            });
        }
        let mut input = tokio::fs::File::open(&src).await.map_err(Error::io(&src))?;
        let mut output = tokio::fs::File::create(dest)
            .await
            .map_err(Error::io(dest))?;
        let copied = tokio::io::copy(&mut input, &mut output)
            .await
            .map_err(Error::io(dest))?;
        output.flush().await.map_err(Error::io(dest))?;
        Ok(copied)
    }
}

/// Hex SHA-256 of a file.
pub async fn sha256_file(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path).map_err(Error::io(&path))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(Error::io(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(|e| Error::Queue(format!("hashing task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_fetcher_copies_inside_the_root_and_refuses_escapes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("lib");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(root.join("ad 1.mp4"), b"0123456789").expect("write");
        std::fs::write(dir.path().join("secret"), b"x").expect("write");
        let f = LocalFetcher::new(&root);
        let dest = dir.path().join("out");
        let uri = format!("file://{}/ad%201.mp4", root.display());
        assert_eq!(f.fetch(&uri, &dest, 100).await.ok(), Some(10));
        assert_eq!(
            sha256_file(&dest).await.ok().as_deref(),
            Some("84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882")
        );
        assert!(f.fetch("ad%201.mp4", &dest, 9).await.is_err(), "size cap");
        assert!(f.fetch("../secret", &dest, 100).await.is_err(), "escape");
        assert!(
            f.fetch("https://cdn.example/a.mp4", &dest, 100)
                .await
                .is_err()
        );
    }
}
