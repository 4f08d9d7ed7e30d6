//! One TLS crypto provider for the whole process.
//!
//! kube and the OCI client both use rustls; with no provider chosen, rustls refuses to guess.
//! kindlab uses ring (what kube is built with here) and installs it before the first client.

use std::sync::Once;

static INSTALL: Once = Once::new();

pub fn ensure_crypto_provider() {
    INSTALL.call_once(|| {
        // Err means another provider is already installed, which serves just as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
