//! The use cases: every edge goes through here (policy, audit, crypto, store).
