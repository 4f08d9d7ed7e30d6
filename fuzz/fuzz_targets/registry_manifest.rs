//! A manifest, an index or an image config as the registry serves it: the media type kindlab
//! pushes a retagged manifest with (`manifest_media_type`, then as a header value), and the
//! platforms `diagnose` reads (`manifest_platforms`, `config_platform`).
#![no_main]

use kindlab::diagnose::{ManifestPlatforms, config_platform, manifest_platforms};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let media_type = kindlab::registry::manifest_media_type(data);
    let _ = http::HeaderValue::from_str(&media_type);
    if let ManifestPlatforms::Listed(platforms) = manifest_platforms(data) {
        for p in &platforms {
            assert!(p.split('/').count() >= 2, "{p:?}");
        }
    }
    if let Some(p) = config_platform(data) {
        assert!(p.split('/').count() >= 2, "{p:?}");
    }
});
