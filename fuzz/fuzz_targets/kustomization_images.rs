//! The overlay's kustomization, edited: `read_images` and `set_images`. An input is
//! `WANTED\0TEXT` (or only TEXT, with `orders-api` wanted at a new tag): TEXT is the file,
//! WANTED the images a push asks for, one a line (`NAME TAG [pin|update|keep] [DIGEST]`).
//!
//! Never a panic; and an edited text must read back saying what was asked: every wanted
//! image's entry names its repository and tag, and the digest the request called for.
#![no_main]

use std::path::Path;

use kindlab::workspace::{DigestChange, find_entry, read_images, set_images};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = kindlab_fuzz::split_head(data);
    let Some(text) = kindlab_fuzz::text(body) else {
        return;
    };
    let wanted = kindlab_fuzz::wanted_images(
        head.and_then(kindlab_fuzz::text)
            .unwrap_or("orders-api 0123456789ab update sha256:aaaa"),
    );
    let file = Path::new("kustomization.yaml");
    let before = read_images(text, file);
    let Ok(Some((edited, changes))) = set_images(text, file, &wanted) else {
        return;
    };
    let before = before.expect("set_images edited a text that read_images refuses");
    let after = match read_images(&edited, file) {
        Ok(after) => after,
        Err(e) => panic!("the edited text does not parse: {e}\n--- edited\n{edited}"),
    };
    assert!(changes.len() <= wanted.len());
    for want in &wanted {
        let Some(index) = find_entry(&after, &want.image, &want.new_name) else {
            panic!("no entry for {want:?} in the edited text\n{edited}");
        };
        let entry = &after[index];
        let was_pinned =
            find_entry(&before, &want.image, &want.new_name).and_then(|i| before[i].digest.clone());
        let digest = match &want.digest {
            DigestChange::Pin(d) => Some(d.clone()),
            DigestChange::UpdateIfPinned(d) => was_pinned.map(|_| d.clone()),
            DigestChange::Keep => was_pinned,
        };
        assert_eq!(
            (
                entry.new_name.as_deref(),
                entry.new_tag.as_deref(),
                &entry.digest
            ),
            (
                Some(want.new_name.as_str()),
                Some(want.new_tag.as_str()),
                &digest
            ),
            "{want:?} is not what the edited text says\n{edited}"
        );
    }
});
