//! Synthetic, realistic-looking candidate profiles for the demo, tests and benchmarks.
