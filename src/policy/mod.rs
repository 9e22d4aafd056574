//! Cedar policy: loading and strict validation of policy/, decisions per field group, explain.
