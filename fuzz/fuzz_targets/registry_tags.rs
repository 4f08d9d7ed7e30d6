//! A registry's tag list (`GET /v2/NAME/tags/list`, 200): read as the OCI client reads it
//! (`TagResponse` from UTF-8 JSON), sorted as kindlab sorts it, then described and searched
//! for the tags nearest a missing one, as `diagnose` does. An input is `WANTED\0BODY` (or only
//! BODY, with `1.36` wanted).
#![no_main]

use kindlab::diagnose::{Presence, RegistryAnswer, nearest};
use libfuzzer_sys::fuzz_target;
use oci_client::client::TagResponse;

fuzz_target!(|data: &[u8]| {
    let (head, body) = kindlab_fuzz::split_head(data);
    let wanted = head.and_then(kindlab_fuzz::text).unwrap_or("1.36");
    let Some(body) = kindlab_fuzz::text(body) else {
        return;
    };
    let Ok(response) = serde_json::from_str::<TagResponse>(body) else {
        return;
    };
    let mut tags = response.tags;
    tags.sort();
    let answer = RegistryAnswer {
        registry: kindlab_fuzz::REGISTRY_HOST.into(),
        repository: Presence::Exists,
        tag: Presence::Missing,
        tags,
        ..RegistryAnswer::default()
    };
    let _ = answer.describe(&response.name, Some(wanted));
    let near = nearest(wanted, &answer.tags);
    assert!(near.len() <= 3, "{near:?}");
    for tag in &near {
        assert!(tag != wanted && answer.tags.contains(tag), "{tag:?}");
    }
});
