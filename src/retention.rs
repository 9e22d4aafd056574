//! The retention job: crypto-shredding of candidates whose assignments have closed.
