//! `kindlab.yaml`: `Workspace::parse`, with `images[].context` resolved against the sample
//! workspace's real directories.
#![no_main]

use std::path::Path;

use kindlab::workspace::Workspace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = kindlab_fuzz::text(data) else {
        return;
    };
    let root = kindlab_fuzz::sample_workspace();
    match Workspace::parse(text, Path::new("kindlab.yaml"), &root) {
        Ok(workspace) => {
            // What validation promises the rest of kindlab.
            assert_ne!(workspace.registry.port, 0);
            for image in &workspace.images {
                assert!(kindlab_fuzz::is_image_name(&image.name), "{image:?}");
                assert!(workspace.image(&image.name).is_ok());
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.fix());
        }
    }
});
