//! Links the `pressroom` binary as a position-dependent executable.
//!
//! A position-independent executable has its pointers in read-only data
//! (vtables, string tables: about 62,000 of them here) relocated by the
//! dynamic loader at every start, which writes to some 400 pages before
//! `main` runs. Most runs are short (a no-op build, a `check`), so that
//! was a tenth of their time: a no-op build of 10,000 articles took
//! 10.4 ms as PIE and 9.5 ms without (interleaved medians, 100 runs each).
//! The cost is address-space randomisation of the binary itself; libraries,
//! stack and heap stay randomised. Tests and benchmarks are unaffected.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
