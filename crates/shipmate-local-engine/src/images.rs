//! Pushed images: each one a snapshot of a directory, addressed by any image string
//! (`web:v2`, `123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2`, …).

use std::path::{Path, PathBuf};

use crate::EngineError;

#[derive(Debug, Clone, Default)]
pub struct ImageStore {}

impl ImageStore {
    pub fn open(_state_dir: Option<&Path>) -> Result<ImageStore, EngineError> {
        Ok(ImageStore {})
    }

    /// The directory of the snapshot pushed under `image`, if any.
    pub fn resolve(&self, _image: &str) -> Option<PathBuf> {
        None
    }
}
