//! Test-only crate: the conformance suites of `shipmate local` live in `tests/`. They drive the
//! endpoint the way users do, through the official aws-sdk-rust clients, and fuzz its request
//! decoder with inputs shaped after botocore's service models (`fixtures/input-shapes.json`).
