//! `server::auth::bearer_token`: the `Authorization` header bytes of every HTTP request,
//! parsed before anything else. A token it returns goes to `Vault::authenticate`, whose shape
//! check (`vault::tokens::token_id_of`, private) is its first step: here against a vault
//! created once per process in a temporary folder, with no token issued, so every token
//! must be refused as `Error::Unauthenticated` (a random one costs a read, never an entry).
#![no_main]

use std::sync::OnceLock;

use cvvault::paths::Paths;
use cvvault::server::auth::bearer_token;
use cvvault::vault::{InitOptions, Unlock, Vault};
use cvvault::Error;
use libfuzzer_sys::fuzz_target;

fn vault() -> &'static Vault {
    static VAULT: OnceLock<Vault> = OnceLock::new();
    VAULT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("cvvault-fuzz-bearer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create the fuzz vault's folder");
        let paths = Paths::under(&root);
        Vault::init(
            &paths,
            InitOptions {
                passphrase: None,
                identity: None,
                recovery_recipients: vec![],
            },
        )
        .expect("init the fuzz vault");
        Vault::open(&paths, &Unlock::Identity(paths.default_identity())).expect("open it")
    })
}

fuzz_target!(|data: &[u8]| {
    let vault = vault();
    let Some(token) = bearer_token(data) else {
        return;
    };
    let text = std::str::from_utf8(data).expect("a token only comes from a UTF-8 header");
    let (scheme, _) = text.split_once(' ').expect("a token follows a space");
    assert!(scheme.eq_ignore_ascii_case("bearer"));
    assert_eq!(token.trim(), token.as_str(), "the token is trimmed");
    match vault.authenticate(&token) {
        Err(Error::Unauthenticated) => {}
        Err(other) => panic!("a token that was never issued was refused as {other:?}"),
        Ok(_) => panic!("a token that was never issued authenticated"),
    }
});
