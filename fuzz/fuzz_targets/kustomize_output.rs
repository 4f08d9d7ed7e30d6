//! What `kustomize build` prints: `parse_documents`, then the images its containers ask for
//! (`container_images`) and their repositories, as `up`, `check` and `pin` read them.
#![no_main]

use kindlab::workspace::{container_images, parse_documents, repository};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // kindlab reads the renderer's stdout lossily.
    let text = String::from_utf8_lossy(data);
    let Ok(objects) = parse_documents(&text) else {
        return;
    };
    assert!(objects.iter().all(|o| !o.is_null()));
    for container in container_images(&objects) {
        let repo = repository(&container.image);
        assert!(container.image.starts_with(repo), "{container:?}");
    }
});
