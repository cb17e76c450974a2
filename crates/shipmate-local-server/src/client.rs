//! The client side of the control API, for `shipmate local push` and for tests: one place that
//! knows the wire format of `/_shipmate/*`.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// An image as the endpoint stored it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedImage {
    pub image: String,
    /// `sha256:<hex>` over the image's files.
    pub digest: String,
    pub pushed_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "endpoint `{0}` is not an http:// URL (shipmate local serves plain HTTP, e.g. http://127.0.0.1:4590)"
    )]
    Endpoint(String),
    #[error("cannot archive `{path}`")]
    Archive {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach the endpoint at {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the endpoint at {endpoint} refused the push ({status}): {code}: {message}")]
    Refused {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("the endpoint at {endpoint} answered something shipmate cannot read: {body}")]
    Unexpected { endpoint: String, body: String },
}

/// Archives `dir` and uploads it to the endpoint's image store as `image`.
pub async fn push_dir(endpoint: &str, image: &str, dir: &Path) -> Result<PushedImage, ClientError> {
    let base = base_url(endpoint)?;
    let dir_owned = dir.to_owned();
    let archive = tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        if !dir_owned.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "an image is pushed from a directory",
            ));
        }
        shipmate_local_engine::images::archive_dir(&dir_owned, &mut bytes).map(|()| bytes)
    })
    .await
    .map_err(|error| ClientError::Archive {
        path: dir.to_owned(),
        source: std::io::Error::other(error),
    })?
    .map_err(|source| ClientError::Archive {
        path: dir.to_owned(),
        source,
    })?;
    push_archive(&base, image, archive).await
}

/// Uploads a tar archive as `image`.
pub async fn push_archive(
    endpoint: &str,
    image: &str,
    archive: Vec<u8>,
) -> Result<PushedImage, ClientError> {
    let base = base_url(endpoint)?;
    let name: String = form_urlencoded::byte_serialize(image.as_bytes()).collect();
    let uri = format!("{base}/_shipmate/images?name={name}");
    let request = http::Request::put(&uri)
        .header(http::header::CONTENT_TYPE, "application/x-tar")
        .body(Full::new(Bytes::from(archive)))
        .map_err(|_| ClientError::Endpoint(endpoint.to_owned()))?;
    let (status, body) = send(&base, request).await?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|_| ClientError::Unexpected {
            endpoint: base.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Err(ClientError::Refused {
        endpoint: base.clone(),
        status: status.as_u16(),
        code: error["__type"].as_str().unwrap_or("unknown").to_owned(),
        message: error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
    })
}

/// The images in the endpoint's store (`GET /_shipmate/images`).
pub async fn list_images(endpoint: &str) -> Result<Vec<PushedImage>, ClientError> {
    #[derive(Deserialize)]
    struct Listed {
        images: Vec<PushedImage>,
    }
    let base = base_url(endpoint)?;
    let uri = format!("{base}/_shipmate/images");
    let request = http::Request::get(&uri)
        .body(Full::new(Bytes::new()))
        .map_err(|_| ClientError::Endpoint(endpoint.to_owned()))?;
    let (status, body) = send(&base, request).await?;
    match serde_json::from_slice::<Listed>(&body) {
        Ok(listed) if status.is_success() => Ok(listed.images),
        _ => Err(ClientError::Unexpected {
            endpoint: base.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
}

/// Sends `request` to the endpoint at `base` and reads the whole answer.
async fn send(
    base: &str,
    request: http::Request<Full<Bytes>>,
) -> Result<(http::StatusCode, Bytes), ClientError> {
    let connect_error = |source: Box<dyn std::error::Error + Send + Sync>| ClientError::Connect {
        endpoint: base.to_owned(),
        source,
    };
    let response = Client::builder(TokioExecutor::new())
        .build_http()
        .request(request)
        .await
        .map_err(|error| connect_error(Box::new(error)))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| connect_error(Box::new(error)))?
        .to_bytes();
    Ok((status, body))
}

/// `http://host:port` without a trailing slash.
fn base_url(endpoint: &str) -> Result<String, ClientError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|_| ClientError::Endpoint(endpoint.to_owned()))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(ClientError::Endpoint(endpoint.to_owned()));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_plain_http() {
        assert_eq!(
            base_url("http://127.0.0.1:4590/").unwrap(),
            "http://127.0.0.1:4590"
        );
        for bad in [
            "https://ecs.us-east-1.amazonaws.com",
            "127.0.0.1:4590",
            "",
            "http://",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
