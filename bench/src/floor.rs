//! The floor: one bare RSA-2048 verify (PKCS#1 v1.5, SHA-256) with aws-lc-rs, timed in this run
//! so that the service's CPU per notification can be given as a multiple of it; the machine is
//! shared and its speed drifts, so a figure from another run would not compare.

use std::time::Duration;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine;

use alipay_notify::alipay::keys::PrivateKey;

/// Verifies per round; the least CPU per verify of `ROUNDS` rounds is taken, the round least
/// disturbed by the other work on the machine.
const VERIFIES: u32 = 500;
const ROUNDS: usize = 5;

/// CPU microseconds of one verify of a notification-sized message signed by `key`.
pub fn bare_verify_us(key: &PrivateKey) -> f64 {
    // About the size of a TRADE_SUCCESS sign string.
    let content = vec![b'a'; 700];
    let signature = base64::engine::general_purpose::STANDARD
        .decode(key.sign(&content))
        .expect("our own signature is base64");
    let public = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key_spki_der())
        .expect("our own public key parses");
    (0..ROUNDS)
        .map(|_| {
            let started = thread_cpu();
            for _ in 0..VERIFIES {
                public
                    .verify_sig(std::hint::black_box(&content), &signature)
                    .expect("our own signature verifies");
            }
            (thread_cpu() - started).as_secs_f64() * 1e6 / f64::from(VERIFIES)
        })
        .fold(f64::INFINITY, f64::min)
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "CLOCK_THREAD_CPUTIME_ID is available on Linux");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_costs_some_cpu_and_not_a_millisecond() {
        let us = bare_verify_us(&PrivateKey::generate());
        assert!(us > 1.0 && us < 1000.0, "{us} µs");
    }
}
