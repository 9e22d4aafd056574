//! The choke point is enforced by the compiler: code outside the vault cannot reach candidate
//! data without a decision. Each file in `tests/compile_fail/` is code that a new edge (a
//! second storage backend, a web console, a script) might write to skip the decision; each
//! must fail to compile, with the error recorded beside it.

#[test]
fn code_that_skips_the_decision_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
