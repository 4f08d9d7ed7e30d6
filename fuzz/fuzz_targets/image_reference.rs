//! An image reference as a pod spec, kindlab.yaml or a lab names it:
//! `diagnose::reference::check`, `parts`, `suggest` and `pointer`, and `workspace::repository`.
#![no_main]

use kindlab::diagnose::reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(image) = kindlab_fuzz::text(data) else {
        return;
    };
    let problems = reference::check(image);
    let chars = image.chars().count();
    for p in &problems {
        // The caret line of `pointer` marks these characters.
        assert!(p.at + p.len <= chars.max(1), "{p:?} in {image:?}");
    }
    let _ = reference::pointer(image, &problems);
    let parts = reference::parts(image);
    let _ = parts.tag_or_latest();
    if let Some(fixed) = reference::suggest(image) {
        assert!(
            fixed != image && reference::check(&fixed).is_empty(),
            "{fixed:?}"
        );
    }
    let repository = kindlab::workspace::repository(image);
    assert!(image.starts_with(repository));
});
