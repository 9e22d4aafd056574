//! What more than one benchmark needs.

/// A new, empty PostgreSQL database `name` on the server of `admin` (a role that may create
/// databases; an older database of that name is dropped first). Returns its URL.
#[allow(clippy::unwrap_used)]
pub fn fresh_database(admin: &str, name: &str) -> String {
    let mut client = postgres::Client::connect(admin, postgres::NoTls).unwrap();
    // Two statements: neither may run inside the implicit transaction of a batch.
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{name}")
}
