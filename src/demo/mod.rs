//! `cvvault demo`: a vault in a temporary directory, filled with synthetic candidates, walked
//! through the whole lifecycle with each step printed.

mod http;

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use crate::cli::Context;
use crate::crypto::keyring::{self, Unlock};
use crate::error::{Error, Result};
use crate::ids::{CandidateId, OrgId, PrincipalId};
use crate::paths::Paths;
use crate::synth::Synth;
use crate::vault::{InitOptions, OpenAssignment, Vault};
use crate::vocabulary::{AssignmentKind, Purpose, Role};

/// Walk through the whole lifecycle on a throw-away vault in a temporary directory.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How many synthetic candidates to import.
    #[arg(long, default_value_t = 300)]
    pub candidates: u64,
    /// Keep the temporary vault and print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Walk through the lifecycle over the HTTP API instead: a server on 127.0.0.1 (any free
    /// port) in this process, driven by an HTTP client with a bearer token per principal.
    #[arg(long)]
    pub http: bool,
}

pub(crate) struct Demo {
    pub dir: tempfile::TempDir,
    pub step: std::cell::Cell<u32>,
}

impl Demo {
    pub fn say(&self, title: &str) {
        let n = self.step.get() + 1;
        self.step.set(n);
        println!("\n== {n}. {title}");
    }

    /// Prints the command line that does what the next lines show, as a user would type it.
    pub fn cmd(&self, line: &str) {
        println!("  $ cvvault {line}");
    }
}

fn p(id: &str) -> Result<PrincipalId> {
    id.parse()
}
fn o(id: &str) -> Result<OrgId> {
    id.parse()
}

pub fn run(ctx: &Context, args: DemoArgs) -> Result<ExitCode> {
    if args.http {
        return http::run(ctx, args);
    }
    let dir = tempfile::Builder::new()
        .prefix("cvvault-demo-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let paths = Paths::under(dir.path());
    let demo = Demo {
        dir,
        step: std::cell::Cell::new(0),
    };

    demo.say("init: keyring (age), identity, database, default Cedar policy");
    demo.cmd("init");
    let report = Vault::init(
        &paths,
        InitOptions {
            passphrase: None,
            identity: None,
            recovery_recipients: vec![],
        },
    )?;
    println!("vault in {}", demo.dir.path().display());
    println!(
        "keyring {} is an age file encrypted to keys/identity.txt",
        report.keyring.display()
    );
    println!("checkpoint verifier key: {}", report.verifier_key);

    let unlock = Unlock::Identity(paths.default_identity());
    let vault = Vault::open(&paths, &unlock)?;

    demo.say("principals: a caseworker, a job coach, two employers, a DPO");
    for (id, role, org) in [
        ("cw-lena", Role::Caseworker, "agency"),
        ("coach-omar", Role::Provider, "nystart-coaching"),
        ("hr-bygg", Role::Employer, "norrbygg-ab"),
        ("hr-other", Role::Employer, "other-employer-ab"),
        ("dpo-sara", Role::Dpo, "agency"),
    ] {
        vault.add_principal(p(id)?, role, o(org)?, None)?;
        demo.cmd(&format!("principal add {id} --role {role} --org {org}"));
    }
    // The employer's own age key: extracts that travel are encrypted to it.
    let (employer_identity, employer_recipient) = keyring::generate_identity();
    let employer_identity_path = demo.dir.path().join("hr-bygg-identity.txt");
    keyring::write_private_file(&employer_identity_path, employer_identity.as_bytes())?;
    let recipient_path = paths.principal_recipient(&p("hr-bygg")?);
    std::fs::create_dir_all(recipient_path.parent().unwrap_or(demo.dir.path()))
        .map_err(|e| Error::io(&recipient_path, e))?;
    std::fs::write(&recipient_path, format!("{employer_recipient}\n"))
        .map_err(|e| Error::io(&recipient_path, e))?;
    println!("  $ age-keygen -o hr-bygg-identity.txt          # the employer's own key");
    println!("  $ age-keygen -y hr-bygg-identity.txt > keys/recipients/hr-bygg.txt");

    demo.say(&format!(
        "import {} synthetic candidates (one NDJSON file, sealed per field group)",
        args.candidates
    ));
    let caseworker = vault.principal(&p("cw-lena")?)?;
    let file = demo.dir.path().join("candidates.ndjson");
    {
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&file).map_err(|e| Error::io(&file, e))?);
        crate::synth::ndjson(
            usize::try_from(args.candidates).unwrap_or(usize::MAX),
            2026,
            &mut out,
        )
        .map_err(|e| Error::io(&file, e))?;
        out.flush().map_err(|e| Error::io(&file, e))?;
    }
    let open = || -> Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(std::io::BufReader::new(
            std::fs::File::open(&file).map_err(|e| Error::io(&file, e))?,
        )))
    };
    demo.cmd("candidate import candidates.ndjson --as cw-lena");
    let started = std::time::Instant::now();
    let imported = vault.import(
        &caseworker,
        &open,
        &crate::vault::ImportOptions::default(),
        &|_, _| {},
    )?;
    println!(
        "imported {} in {:.2?}; no plaintext column describes a person",
        imported.imported,
        started.elapsed()
    );

    demo.say("register one more candidate, who consents to employer contact");
    let mut synth = Synth::new(7);
    let mut profile = synth.profile();
    profile.control.protected = false;
    profile.control.consents.employer_contact = true;
    demo.cmd("candidate add cv.json --as cw-lena");
    let anna = vault.register(&caseworker, &profile)?;
    println!("candidate {anna}");
    let mut protected_profile = synth.profile();
    protected_profile.control.protected = true;
    let hidden = vault.register(&caseworker, &protected_profile)?;
    println!("candidate {hidden} has a protected identity");

    demo.say("registering as an employer grants nothing: hr-bygg asks before any assignment");
    let employer = vault.principal(&p("hr-bygg")?)?;
    let recruitment: Purpose = "recruitment".parse()?;
    demo.cmd(&format!(
        "extract --candidate {anna} --purpose recruitment --as hr-bygg"
    ));
    show_refusal(vault.extract(&employer, &anna, &recruitment).map(|_| ()))?;

    demo.say("assignments: coaching for nystart-coaching, matching for norrbygg-ab");
    demo.cmd(&format!("assignment open --candidate {anna} --org nystart-coaching --kind coaching --purpose coaching --as cw-lena"));
    demo.cmd(&format!("assignment open --candidate {anna} --org norrbygg-ab --kind matching --purpose recruitment --as cw-lena"));
    let coaching = vault.open_assignment(
        &caseworker,
        OpenAssignment {
            candidate_id: anna,
            org: o("nystart-coaching")?,
            kind: AssignmentKind::Coaching,
            purpose: "coaching".parse()?,
        },
    )?;
    let matching = vault.open_assignment(
        &caseworker,
        OpenAssignment {
            candidate_id: anna,
            org: o("norrbygg-ab")?,
            kind: AssignmentKind::Matching,
            purpose: "recruitment".parse()?,
        },
    )?;
    println!("coaching {coaching}\nmatching {matching}");
    print!("matching a protected candidate: ");
    show_refusal(
        vault
            .open_assignment(
                &caseworker,
                OpenAssignment {
                    candidate_id: hidden,
                    org: o("norrbygg-ab")?,
                    kind: AssignmentKind::Matching,
                    purpose: "recruitment".parse()?,
                },
            )
            .map(|_| ()),
    )?;

    demo.say("extract by the job coach (purpose coaching)");
    let coach = vault.principal(&p("coach-omar")?)?;
    demo.cmd(&format!(
        "extract --candidate {anna} --purpose coaching --as coach-omar"
    ));
    let extract = vault.extract(&coach, &anna, &"coaching".parse()?)?;
    print_groups(&extract);

    demo.say("extract by the employer (purpose recruitment): never `special`");
    demo.cmd(&format!(
        "extract --candidate {anna} --purpose recruitment --as hr-bygg"
    ));
    let extract = vault.extract(&employer, &anna, &recruitment)?;
    print_groups(&extract);
    let out = demo.dir.path().join("extract-hr-bygg.age");
    let sealed = vault.deliver_extract(
        &employer,
        &anna,
        &recruitment,
        crate::vault::Delivery::AgeToPrincipal,
    )?;
    demo.cmd(&format!(
        "extract --candidate {anna} --purpose recruitment --out extract-hr-bygg.age --as hr-bygg"
    ));
    keyring::write_private_file(&out, &sealed.bytes)?;
    if args.keep {
        println!(
            "the extract travels as {} (age, to hr-bygg's own key): `age -d -i {} {}` opens it",
            out.display(),
            employer_identity_path.display(),
            out.display()
        );
    } else {
        println!(
            "the extract travels age-encrypted to hr-bygg's own key (the demo folder is deleted at the end: run `cvvault demo --keep` to open it with `age -d`)"
        );
    }

    demo.say("refused: another employer, a wrong purpose, a DPO");
    demo.cmd(&format!(
        "extract --candidate {anna} --purpose recruitment --as hr-other"
    ));
    demo.cmd(&format!(
        "extract --candidate {anna} --purpose coaching --as hr-bygg"
    ));
    demo.cmd(&format!(
        "extract --candidate {anna} --purpose recruitment --as dpo-sara"
    ));
    print!("other-employer-ab: ");
    show_refusal(
        vault
            .extract(&vault.principal(&p("hr-other")?)?, &anna, &recruitment)
            .map(|_| ()),
    )?;
    print!("hr-bygg for `coaching`, not its assignment's purpose: ");
    show_refusal(
        vault
            .extract(&employer, &anna, &"coaching".parse()?)
            .map(|_| ()),
    )?;
    print!("dpo-sara: ");
    show_refusal(
        vault
            .extract(&vault.principal(&p("dpo-sara")?)?, &anna, &recruitment)
            .map(|_| ()),
    )?;

    demo.say("explain: why may hr-bygg see which groups?");
    demo.cmd(&format!(
        "policy explain --candidate {anna} --purpose recruitment --as hr-bygg"
    ));
    for e in vault.explain(&employer, &anna, &recruitment)? {
        println!("  {}", e.sentence);
    }

    demo.say("key rotation: new KEK version, every DEK rewrapped, old version destroyed");
    demo.cmd("keys rotate");
    let rotation = vault.rotate_keys(&unlock, crate::vault::RotateIdentity::Keep, &|_, _| {})?;
    println!(
        "KEK v{} current, {} DEKs rewrapped, destroyed {:?}",
        rotation.new_version, rotation.rewrapped, rotation.retired
    );
    let again = vault.extract(&employer, &anna, &recruitment)?;
    println!(
        "still readable after rotation: groups {:?}",
        again.groups.iter().map(|g| g.as_str()).collect::<Vec<_>>()
    );

    demo.say("erase on request (crypto-shredding)");
    let erased: CandidateId = hidden;
    demo.cmd(&format!("candidate erase {erased} --as cw-lena"));
    vault.erase(&caseworker, &erased)?;
    print!("after erasure: ");
    show_refusal(
        vault
            .extract(&caseworker, &erased, &"coaching".parse()?)
            .map(|_| ()),
    )?;

    demo.say("subject access report (GDPR Art. 15) for the candidate, made by the DPO");
    let dpo = vault.principal(&p("dpo-sara")?)?;
    demo.cmd(&format!("subject-access {anna} --as dpo-sara"));
    let report = vault.subject_access(&dpo, &anna)?;
    for line in report.to_text().lines() {
        println!("  {line}");
    }

    demo.say("the assignments close; retention crypto-shreds the candidate");
    demo.cmd(&format!(
        "assignment close {coaching} --reason \"coaching completed\" --as cw-lena"
    ));
    demo.cmd(&format!(
        "assignment close {matching} --reason \"placed in work\" --as cw-lena"
    ));
    vault.close_assignment(&caseworker, &coaching, "coaching completed")?;
    vault.close_assignment(&caseworker, &matching, "placed in work")?;
    let settings = crate::settings::Retention::load(&paths.retention_settings())?;
    demo.cmd("retention run --dry-run");
    let preview = crate::vault::retention::run(&vault, &settings, true, None, &|_| {})?;
    println!(
        "dry run: would erase {} candidate(s) {:?}",
        preview.total, preview.erased
    );
    demo.cmd("retention run");
    let run = crate::vault::retention::run(&vault, &settings, false, Some(&unlock), &|_| {})?;
    println!(
        "erased {} candidate(s) {:?}, held {}, failures {}",
        run.total, run.erased, run.held, run.failures
    );
    print!("hr-bygg asks again: ");
    show_refusal(vault.extract(&employer, &anna, &recruitment).map(|_| ()))?;

    demo.say("proof of erasure a DPO can file, verified offline with the public verifier key");
    demo.cmd(&format!("audit receipt --candidate {anna} --as dpo-sara"));
    let receipt = vault.erasure_receipt(&dpo, &anna)?;
    let verifier = crate::audit::note::NoteVerifier::parse(&vault.verifier_key())
        .map_err(|e| Error::invalid_input(e.to_string()))?;
    let checkpoint = crate::audit::verify::verify_proof(&receipt.proof, &verifier)?;
    println!(
        "erase entry #{} is in the log of {} entries signed by {}",
        receipt.proof.index, checkpoint.size, checkpoint.origin
    );

    demo.say("the DPO verifies the whole audit trail (Merkle tree, checkpoints, entry MACs)");
    demo.cmd("audit verify --as dpo-sara");
    let verified = vault.audit_verify(&dpo, Vec::new(), &|_| {})?;
    println!(
        "verified {} entries, root {}, {} checkpoint(s), MACs checked: {}",
        verified.entries,
        verified.root,
        verified.checkpoints.len(),
        verified.macs_checked
    );
    let checkpoint = vault.audit_checkpoint()?;
    println!("latest signed checkpoint (copy it off the machine):");
    for line in checkpoint.lines() {
        println!("  {line}");
    }

    vault.close()?;
    if args.keep {
        let kept = demo.dir.keep();
        println!(
            "\nkept the demo vault in {}: run the commands above there (cd into it), e.g. `cvvault audit verify --as dpo-sara`",
            kept.display()
        );
    } else {
        println!(
            "\nthe demo vault in {} is deleted now; `cvvault demo --keep` keeps it to look at its files and run the commands above in it",
            demo.dir.path().display()
        );
    }
    println!("\ndemo complete");
    Ok(ExitCode::SUCCESS)
}

fn print_groups(extract: &crate::vault::Extract) {
    let groups: Vec<&str> = extract.groups.iter().map(|g| g.as_str()).collect();
    let denied: Vec<&str> = extract.denied_groups.iter().map(|g| g.as_str()).collect();
    println!(
        "  disclosed: {}   withheld: {}   (audit entry #{})",
        groups.join(", "),
        denied.join(", "),
        extract.audit_index
    );
    println!("  policies: {}", extract.policy_ids.join(", "));
}

/// Prints a refusal; an action the demo expects to be refused but that succeeds is a bug.
fn show_refusal(result: Result<()>) -> Result<()> {
    match result {
        Ok(()) => Err(Error::Conflict(
            "the demo expected a refusal, but the action was allowed: the policy is not the default".into(),
        )),
        Err(e) => {
            println!("  refused: {e} (exit code {})", e.exit_code());
            Ok(())
        }
    }
}
