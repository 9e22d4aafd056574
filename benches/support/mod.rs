//! What more than one benchmark needs.

/// A new, empty PostgreSQL database `name` on the server of `admin` (a role that may create
/// databases; an older database of that name is dropped first). Returns its URL.
#[allow(clippy::unwrap_used, dead_code)]
pub fn fresh_database(admin: &str, name: &str) -> String {
    let mut client = postgres::Client::connect(admin, postgres::NoTls).unwrap();
    // Two statements: neither may run inside the implicit transaction of a batch.
    // FORCE cannot end an autovacuum worker (a superuser's process) still busy with the
    // last round's tables: wait for it, up to a minute.
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    for _ in 0..60 {
        match client.batch_execute(&drop) {
            Err(e) if e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            done => {
                done.unwrap();
                break;
            }
        }
    }
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{name}")
}

/// A vault whose trail was written by the vault itself, as a busy vault writes it.
#[allow(dead_code)]
pub struct BusyVault {
    /// Its files.
    pub paths: cvvault::paths::Paths,
    /// The open vault.
    pub vault: cvvault::vault::Vault,
    /// Its clock: the trail spans about three weeks of it.
    pub clock: cvvault::clock::ManualClock,
    /// The candidates, each with an open matching assignment for `hr-anna` of nordlager-ab.
    pub candidates: Vec<cvvault::ids::CandidateId>,
}

/// Candidates of [`busy_vault`].
pub const BUSY_CANDIDATES: usize = 2_000;

/// A vault under `root` with principals cw, dpo, hr-anna (employer, nordlager-ab) and
/// hr-other (employer, other-ab), [`BUSY_CANDIDATES`] candidates registered and assigned,
/// then extracts until the trail holds about `entries` entries: one in ten refused (hr-other
/// asking), the rest allowed, the clock two seconds on per attempt. Through the public use
/// cases only, on two threads.
#[allow(dead_code)]
pub fn busy_vault(
    root: &std::path::Path,
    entries: u64,
) -> Result<BusyVault, Box<dyn std::error::Error>> {
    use std::sync::atomic::{AtomicU64, Ordering};

    use cvvault::vault::{InitOptions, OpenAssignment, Unlock, Vault};
    use cvvault::vocabulary::Role;

    let paths = cvvault::paths::Paths::under(root);
    Vault::init(
        &paths,
        InitOptions {
            passphrase: None,
            identity: None,
            recovery_recipients: vec![],
        },
    )?;
    let clock = cvvault::clock::ManualClock::at(1_767_225_600);
    let vault = Vault::open_with_clock(
        &paths,
        &Unlock::Identity(paths.default_identity()),
        std::sync::Arc::new(clock.clone()),
    )?;
    for (id, role, org) in [
        ("cw", Role::Caseworker, "agency"),
        ("dpo", Role::Dpo, "agency"),
        ("hr-anna", Role::Employer, "nordlager-ab"),
        ("hr-other", Role::Employer, "other-ab"),
    ] {
        vault.add_principal(id.parse()?, role, org.parse()?, None)?;
    }
    let cw = vault.principal(&"cw".parse()?)?;
    let employer = vault.principal(&"hr-anna".parse()?)?;
    let other = vault.principal(&"hr-other".parse()?)?;

    let mut synth = cvvault::synth::Synth::new(42);
    let mut candidates = Vec::with_capacity(BUSY_CANDIDATES);
    for i in 0..BUSY_CANDIDATES {
        let mut profile = synth.profile_with_marker(&format!("AV-{i}"));
        profile.control.protected = false;
        profile.control.consents.employer_contact = true;
        let id = vault.register(&cw, &profile)?;
        vault.open_assignment(
            &cw,
            OpenAssignment {
                candidate_id: id,
                org: "nordlager-ab".parse()?,
                kind: "matching".parse()?,
                purpose: "recruitment".parse()?,
            },
        )?;
        candidates.push(id);
    }
    let recruitment = "recruitment".parse()?;
    // Every attempt writes one entry, allowed or refused.
    let attempts = entries.saturating_sub(2 * BUSY_CANDIDATES as u64);
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| -> Result<(), String> {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (vault, candidates, next, clock) = (&vault, &candidates, &next, &clock);
                let (employer, other, recruitment) = (&employer, &other, &recruitment);
                scope.spawn(move || -> Result<(), String> {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= attempts {
                            return Ok(());
                        }
                        clock.advance(2);
                        let Some(id) = candidates.get((n % BUSY_CANDIDATES as u64) as usize) else {
                            return Err("no candidate".into());
                        };
                        if n % 10 == 0 {
                            if vault.extract(other, id, recruitment).is_ok() {
                                return Err("an unrelated employer got an extract".into());
                            }
                        } else {
                            vault
                                .extract(employer, id, recruitment)
                                .map_err(|e| e.to_string())?;
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a writer thread failed".to_owned())??;
        }
        Ok(())
    })?;
    Ok(BusyVault {
        paths,
        vault,
        clock,
        candidates,
    })
}
