//! Synthetic, realistic-looking candidate profiles for the demo, tests and benchmarks.
//!
//! Deterministic per seed ([`rand::rngs::StdRng`], whose stream is stable within rand 0.8).
//! The people are fake and built so that they cannot point at real ones:
//! - personal numbers are coordination numbers (samordningsnummer: day of birth + 60) with
//!   serial numbers 980–999 and a valid Luhn check digit;
//! - phone numbers are from 070-174 06 05 – 070-174 06 99, which the Swedish Post and Telecom
//!   Authority (PTS) sets aside for fiction;
//! - e-mail addresses are at `example.org`, `example.com` and `example.net` (RFC 2606).
//!
//! About half the candidates have Swedish names and half refugee-background names (Syrian,
//! Afghan, Eritrean, Somali, Ukrainian), with matching languages (CEFR levels) and, for
//! some, a filled `special` group. About 5 % are protected (`control.protected`), about 40 %
//! consent to employer contact.

use std::io::{self, Write};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::profile::{
    Address, Consents, Contact, Control, Education, Identity, Language, Professional, Profile,
    Skill, Special, Work, MAX_STRING_BYTES,
};

/// The year work histories end in. Fixed, not read from the clock, so output depends only on
/// the seed.
const REFERENCE_YEAR: u16 = 2025;

/// A deterministic generator of synthetic profiles.
pub struct Synth {
    rng: StdRng,
}

/// Writes `count` synthetic profiles from `seed` as newline-delimited JSON (one compact
/// profile per line), as `candidate import` and the benchmarks read them.
pub fn ndjson<W: Write>(count: usize, seed: u64, writer: W) -> io::Result<()> {
    let mut synth = Synth::new(seed);
    let mut out = io::BufWriter::new(writer);
    for _ in 0..count {
        serde_json::to_writer(&mut out, &synth.profile()).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The Luhn check digit of `digits` (each 0–9), as used for the last digit of a Swedish
/// personal number over its ten-digit form `YYMMDDNNN`.
pub fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let doubled = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
            doubled / 10 + doubled % 10
        })
        .sum();
    // The result is below 10, so the narrowing cannot truncate.
    ((10 - sum % 10) % 10) as u8
}

/// Where a candidate's name, languages and background come from.
#[derive(Clone, Copy, Default)]
struct Origin {
    first_names: &'static [&'static str],
    last_names: &'static [&'static str],
    /// The mother tongue, in Swedish.
    language: &'static str,
    /// Nationality for the special group; `None` for Swedish citizens by birth.
    nationality: Option<&'static str>,
    /// Residence-permit situations typical of the group.
    statuses: &'static [&'static str],
    /// Cities of earlier work and study.
    home_cities: &'static [&'static str],
    /// Second languages often spoken, besides Swedish and English.
    other_languages: &'static [&'static str],
    /// Ethnic origin sometimes recorded (to exercise that Art. 9 field).
    ethnic_origins: &'static [&'static str],
}

const SWEDISH: Origin = Origin {
    first_names: &[
        "Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Eva", "Anders", "Sara", "Mikael",
        "Emma", "Oskar", "Linnea", "Henrik", "Elin", "Fredrik", "Ingrid", "Gustav", "Maja", "Nils",
    ],
    last_names: &[
        "Lindqvist",
        "Johansson",
        "Andersson",
        "Karlsson",
        "Nilsson",
        "Eriksson",
        "Larsson",
        "Olsson",
        "Persson",
        "Svensson",
        "Gustafsson",
        "Pettersson",
        "Jonsson",
        "Berg",
        "Lindberg",
        "Holm",
        "Sandberg",
        "Ekström",
        "Nyström",
        "Bergström",
    ],
    language: "svenska",
    nationality: None,
    statuses: &[],
    home_cities: &[],
    other_languages: &["tyska", "spanska", "franska"],
    ethnic_origins: &[],
};

const ORIGINS: [Origin; 5] = [
    Origin {
        first_names: &[
            "Yousef", "Rania", "Omar", "Lina", "Khaled", "Nour", "Ahmad", "Hiba", "Samer", "Dima",
        ],
        last_names: &[
            "Al-Haddad",
            "Khalil",
            "Haddad",
            "Aziz",
            "Al-Masri",
            "Darwish",
            "Hamdan",
            "Sabbagh",
            "Nasser",
            "Al-Khatib",
        ],
        language: "arabiska",
        nationality: Some("Syrian"),
        statuses: &[
            "permanent residence permit",
            "temporary residence permit (refugee status, 3 years)",
            "Swedish citizenship (naturalised)",
        ],
        home_cities: &["Aleppo", "Damaskus", "Homs", "Latakia"],
        other_languages: &["kurdiska", "turkiska"],
        ethnic_origins: &["Kurdish", "Arab"],
    },
    Origin {
        first_names: &[
            "Farid", "Zahra", "Mohammad", "Mariam", "Ali", "Fatima", "Reza", "Shabnam", "Hamid",
            "Parwana",
        ],
        last_names: &[
            "Rahimi", "Ahmadi", "Karimi", "Sultani", "Hosseini", "Noori", "Safi", "Haidari",
            "Azizi", "Popal",
        ],
        language: "dari",
        nationality: Some("Afghan"),
        statuses: &[
            "permanent residence permit",
            "temporary residence permit (upper-secondary studies)",
            "temporary residence permit (subsidiary protection, 13 months)",
        ],
        home_cities: &["Kabul", "Herat", "Mazar-e Sharif", "Kandahar"],
        other_languages: &["pashto", "persiska"],
        ethnic_origins: &["Hazara", "Tajik"],
    },
    Origin {
        first_names: &[
            "Amani", "Yonas", "Senait", "Robel", "Helen", "Dawit", "Feven", "Samuel", "Selam",
            "Tesfalem",
        ],
        last_names: &[
            "Haile",
            "Tesfay",
            "Ghebremariam",
            "Kidane",
            "Berhane",
            "Tekle",
            "Habte",
            "Woldu",
            "Mehari",
            "Asmerom",
        ],
        language: "tigrinja",
        nationality: Some("Eritrean"),
        statuses: &[
            "refugee status, permanent residence permit",
            "temporary residence permit (refugee status, 3 years)",
        ],
        home_cities: &["Asmara", "Keren", "Massawa"],
        other_languages: &["arabiska", "amhariska"],
        ethnic_origins: &["Tigrinya"],
    },
    Origin {
        first_names: &[
            "Hodan", "Abdi", "Fadumo", "Ahmed", "Sahra", "Mohamed", "Ifrah", "Hassan", "Nasra",
            "Yusuf",
        ],
        last_names: &[
            "Warsame",
            "Farah",
            "Mohamed",
            "Jama",
            "Ali",
            "Abdullahi",
            "Osman",
            "Hussein",
            "Aden",
            "Egal",
        ],
        language: "somaliska",
        nationality: Some("Somali"),
        statuses: &[
            "permanent residence permit",
            "temporary residence permit (subsidiary protection, 13 months)",
            "Swedish citizenship (naturalised)",
        ],
        home_cities: &["Mogadishu", "Hargeisa", "Kismayo"],
        other_languages: &["arabiska"],
        ethnic_origins: &[],
    },
    Origin {
        first_names: &[
            "Oksana", "Dmytro", "Iryna", "Andrii", "Olena", "Serhii", "Natalia", "Taras", "Yulia",
            "Bohdan",
        ],
        last_names: &[
            "Kovalenko",
            "Shevchenko",
            "Bondarenko",
            "Melnyk",
            "Tkachenko",
            "Kravchenko",
            "Boyko",
            "Moroz",
            "Lysenko",
            "Savchenko",
        ],
        language: "ukrainska",
        nationality: Some("Ukrainian"),
        statuses: &[
            "temporary protection (EU Temporary Protection Directive)",
            "temporary protection (EU Temporary Protection Directive), extended",
        ],
        home_cities: &["Kharkiv", "Kyiv", "Odesa", "Dnipro"],
        other_languages: &["ryska", "polska"],
        ethnic_origins: &[],
    },
];

/// An occupation with what goes with it.
#[derive(Clone, Copy, Default)]
struct Occupation {
    title: &'static str,
    employers: &'static [&'static str],
    /// Kind of employer abroad, followed by ` i <city>`.
    employer_abroad: &'static str,
    duties: &'static [&'static str],
    skills: &'static [&'static str],
    /// Level, field, and the kind of Swedish school that gives it (`<school> i <city>`).
    education: (&'static str, &'static str, &'static str),
    licences: &'static [&'static str],
}

const OCCUPATIONS: [Occupation; 12] = [
    Occupation {
        title: "undersköterska",
        employers: &["Vårdboendet Solrosen", "Hemtjänsten Centrum", "Länssjukhusets akutmottagning"],
        employer_abroad: "Sjukhus",
        duties: &[
            "Omvårdnad av äldre i särskilt boende, dokumentation och stöd vid måltider.",
            "Personlig omvårdnad, läkemedelsöverlämning enligt delegering och samarbete med sjuksköterskor.",
            "Hemtjänst med dusch, inköp och social samvaro; rapportering till kontaktman.",
        ],
        skills: &["omvårdnad", "dokumentation", "förflyttningsteknik", "demensvård"],
        education: ("gymnasieexamen", "vård- och omsorgsprogrammet", "Komvux"),
        licences: &["HLR-utbildning", "delegering för läkemedel"],
    },
    Occupation {
        title: "lagerarbetare",
        employers: &["Nordlager AB", "Logistikcentrum Syd AB", "Distributionshallen AB"],
        employer_abroad: "Grossistlager",
        duties: &[
            "Plock och pack med handscanner, inleverans och inventering.",
            "Truckkörning i höglager, lastning av bilar och kontroll av följesedlar.",
        ],
        skills: &["orderplock", "truckkörning", "inventering", "lagersystem (WMS)"],
        education: ("gymnasieexamen", "handels- och administrationsprogrammet", "Gymnasieskolan"),
        licences: &["truckkort A+B", "B-körkort"],
    },
    Occupation {
        title: "CNC-operatör",
        employers: &["Mekaniska Verkstaden AB", "Precisionsdetaljer Norr AB"],
        employer_abroad: "Verkstadsföretag",
        duties: &[
            "Ställ och körning av CNC-fleroperationsmaskiner, mätning med skjutmått och mikrometer.",
            "Programmering i Heidenhain, verktygsbyten och egenkontroll mot ritning.",
        ],
        skills: &["CNC-fräsning", "ritningsläsning", "mätteknik", "Heidenhain"],
        education: ("yrkeshögskoleexamen", "CNC-teknik", "Yrkeshögskolan"),
        licences: &["heta arbeten", "traverskort"],
    },
    Occupation {
        title: "barnskötare",
        employers: &["Förskolan Ekorren", "Förskolan Regnbågen", "Förskolan Lärkan"],
        employer_abroad: "Förskola",
        duties: &[
            "Pedagogiskt arbete i barngrupp 1–5 år, planering av aktiviteter och kontakt med vårdnadshavare.",
            "Språkutvecklande arbete med flerspråkiga barn, utevistelse och måltider.",
        ],
        skills: &["barngruppsarbete", "pedagogisk dokumentation", "språkutvecklande arbetssätt"],
        education: ("gymnasieexamen", "barn- och fritidsprogrammet", "Komvux"),
        licences: &["HLR för barn"],
    },
    Occupation {
        title: "bussförare",
        employers: &["Stadsbuss Väst AB", "Regionbuss Mitt AB"],
        employer_abroad: "Bussbolag",
        duties: &[
            "Linjetrafik i stadsmiljö, biljetthantering och daglig fordonskontroll.",
            "Skolskjuts och regionala linjer, avvikelserapportering och kundbemötande.",
        ],
        skills: &["linjetrafik", "kundbemötande", "sparsam körning"],
        education: ("yrkesutbildning", "bussförare", "Komvux"),
        licences: &["D-körkort", "YKB (yrkeskompetensbevis)", "B-körkort"],
    },
    Occupation {
        title: "civilingenjör",
        employers: &["Ingenjörshuset Konsult AB", "Energisystem Norr AB", "Brobyggarna AB"],
        employer_abroad: "Ingenjörsbyrå",
        duties: &[
            "Beräkning och dimensionering av VVS-system, projektering i CAD och kontakt med beställare.",
            "Hållfasthetsberäkningar, ritningsgranskning och uppföljning av leverantörer.",
        ],
        skills: &["AutoCAD", "MATLAB", "projektledning", "hållfasthetsberäkning"],
        education: ("civilingenjörsexamen", "maskinteknik", "Tekniska högskolan"),
        licences: &["B-körkort"],
    },
    Occupation {
        title: "lokalvårdare",
        employers: &["Renhållning & Lokalvård AB", "Fastighetsservice Öst AB"],
        employer_abroad: "Hotell",
        duties: &[
            "Daglig städning av kontor och trapphus, maskinskurning och golvvård.",
            "Städning av hotellrum och allmänna utrymmen enligt checklista.",
        ],
        skills: &["lokalvård", "maskinstädning", "hygienrutiner"],
        education: ("grundskola", "", "Komvux"),
        licences: &["Städteknik grund"],
    },
    Occupation {
        title: "kock",
        employers: &["Restaurang Hamnkrogen", "Skolköket Solbacken", "Lunchrestaurangen Torget"],
        employer_abroad: "Restaurang",
        duties: &[
            "Tillagning av lunch för 300 gäster, specialkost och egenkontroll enligt HACCP.",
            "À la carte, beställningar och ansvar för kallskänk.",
        ],
        skills: &["storköksmatlagning", "specialkost", "HACCP", "menyplanering"],
        education: ("gymnasieexamen", "restaurang- och livsmedelsprogrammet", "Gymnasieskolan"),
        licences: &["livsmedelshygien"],
    },
    Occupation {
        title: "lastbilschaufför",
        employers: &["Åkeri Nord AB", "Transportbolaget Mälardalen AB"],
        employer_abroad: "Transportföretag",
        duties: &[
            "Distribution med lastbil och släp, lastsäkring och färdskrivare.",
            "Fjärrtransporter, kranbil och lossning på byggarbetsplatser.",
        ],
        skills: &["lastsäkring", "färdskrivare", "kranhantering"],
        education: ("yrkesutbildning", "lastbilsförare", "Komvux"),
        licences: &["CE-körkort", "YKB (yrkeskompetensbevis)", "ADR-intyg"],
    },
    Occupation {
        title: "elektriker",
        employers: &["Elinstallationer Öst AB", "Kraft & Ljus Installation AB"],
        employer_abroad: "Elfirma",
        duties: &[
            "Installation i bostäder och kommersiella lokaler enligt elsäkerhetsföreskrifterna.",
            "Felsökning, service och ombyggnad av belysning och kraft.",
        ],
        skills: &["elinstallation", "felsökning", "ritningsläsning"],
        education: ("gymnasieexamen", "el- och energiprogrammet", "Gymnasieskolan"),
        licences: &["auktorisation AL", "B-körkort", "ESA-utbildning"],
    },
    Occupation {
        title: "sjuksköterska",
        employers: &["Länssjukhusets medicinavdelning", "Vårdcentralen Norra"],
        employer_abroad: "Sjukhus",
        duties: &[
            "Omvårdnadsansvar på medicinavdelning, läkemedelshantering och ronder.",
            "Mottagningsarbete med telefonrådgivning, provtagning och vaccinationer.",
        ],
        skills: &["omvårdnad", "läkemedelshantering", "journalföring", "triage"],
        education: ("sjuksköterskeexamen", "omvårdnad", "Högskolan"),
        licences: &["legitimation sjuksköterska", "HLR-utbildning"],
    },
    Occupation {
        title: "systemutvecklare",
        employers: &["Digitalbyrån Norrsken AB", "Kommunens IT-enhet"],
        employer_abroad: "IT-företag",
        duties: &[
            "Utveckling av webbtjänster i Python och TypeScript, kodgranskning och driftsättning.",
            "Underhåll av verksamhetssystem, SQL-frågor och support till användare.",
        ],
        skills: &["Python", "SQL", "Linux", "Git", "TypeScript"],
        education: ("kandidatexamen", "datavetenskap", "Universitetet"),
        licences: &["B-körkort"],
    },
];

/// A city and the first three digits of its postal codes.
type City = (&'static str, &'static [u16]);

const CITIES: [City; 17] = [
    ("Stockholm", &[113, 116, 118, 123, 129]),
    ("Göteborg", &[411, 413, 416, 421, 424]),
    ("Malmö", &[211, 214, 215, 217]),
    ("Uppsala", &[752, 753, 754]),
    ("Västerås", &[722, 724, 726]),
    ("Örebro", &[702, 703, 705]),
    ("Linköping", &[582, 583, 587]),
    ("Norrköping", &[602, 603]),
    ("Jönköping", &[553, 554, 556]),
    ("Umeå", &[903, 904, 906]),
    ("Borås", &[503, 504, 507]),
    ("Södertälje", &[151, 152]),
    ("Gävle", &[802, 803, 806]),
    ("Eskilstuna", &[632, 633, 635]),
    ("Luleå", &[972, 973, 974]),
    ("Helsingborg", &[252, 254]),
    ("Sundsvall", &[852, 853]),
];

const STREETS: [&str; 12] = [
    "Storgatan",
    "Drottninggatan",
    "Kungsgatan",
    "Vasagatan",
    "Skolgatan",
    "Björkvägen",
    "Ringvägen",
    "Järnvägsgatan",
    "Parkvägen",
    "Torggatan",
    "Lärkvägen",
    "Idrottsvägen",
];

/// CEFR levels of a language learnt as an adult.
const CEFR_LEARNED: [&str; 4] = ["A2", "B1", "B2", "C1"];
/// CEFR levels of a language picked up on the side.
const CEFR_SIDE: [&str; 4] = ["A1", "A2", "B1", "B2"];

const HEALTH: [&str; 5] = [
    "ryggbesvär: undviker tunga lyft",
    "dyslexi: behöver instruktioner även muntligt",
    "hörselnedsättning: använder hörapparat",
    "ADHD: fungerar bäst med tydlig struktur",
    "diabetes typ 1: behöver regelbundna raster",
];

const GENERAL_SKILLS: [&str; 5] = [
    "Microsoft Office",
    "kundservice",
    "samarbete i team",
    "planering",
    "problemlösning",
];

impl Synth {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Synth {
        Synth {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The next synthetic profile.
    pub fn profile(&mut self) -> Profile {
        let origin = if self.rng.gen_bool(0.5) {
            SWEDISH
        } else {
            self.pick(&ORIGINS)
        };
        let occupation = self.pick(&OCCUPATIONS);
        let city = self.pick(&CITIES);

        let first = self.pick(origin.first_names);
        let last = self.pick(origin.last_names);
        let birth_year = self.rng.gen_range(1962..=2004u16);

        Profile {
            identity: Identity {
                name: format!("{first} {last}"),
                birth_year: Some(birth_year),
                personal_number: Some(self.personal_number(birth_year)),
            },
            contact: self.contact(first, last, city),
            professional: self.professional(&origin, &occupation, city.0, birth_year),
            special: self.special(&origin),
            control: Control {
                protected: self.rng.gen_bool(0.05),
                consents: Consents {
                    employer_contact: self.rng.gen_bool(0.4),
                },
            },
            agency_reference: None,
        }
    }

    /// A profile with `marker` in the name, the e-mail address, the first work description and
    /// the special group (`special.health`), so tests can look for it in raw files. The
    /// marker is placed verbatim: one with an `@` makes the e-mail address invalid.
    pub fn profile_with_marker(&mut self, marker: &str) -> Profile {
        let mut profile = self.profile();
        profile.identity.name = format!("{} {marker}", profile.identity.name);
        let email = profile.contact.email.take().unwrap_or_default();
        let (local, domain) = email.split_once('@').unwrap_or(("kandidat", "example.org"));
        profile.contact.email = Some(format!("{local}.{marker}@{domain}"));
        match profile.professional.work.first_mut() {
            Some(work) => {
                let duties = work.description.take().unwrap_or_default();
                work.description = Some(format!("{duties} {marker}"));
            }
            None => profile.professional.work.push(Work {
                employer: "Nordlager AB".to_owned(),
                title: "lagerarbetare".to_owned(),
                start: Some(format!("{}-03", REFERENCE_YEAR - 2)),
                end: None,
                description: Some(format!("Plock och pack. {marker}")),
            }),
        }
        profile.special.health = Some(format!("anpassning enligt läkarintyg {marker}"));
        profile
    }

    /// A profile whose compact JSON serialization is about `target_bytes` long (within a few
    /// bytes, once the target exceeds the smallest profile the generator makes), padded with
    /// earlier jobs. Targets above [`crate::profile::MAX_PROFILE_BYTES`] give a profile that
    /// [`Profile::validate`] refuses, which is what a limits test wants.
    pub fn profile_of_size(&mut self, target_bytes: usize) -> Profile {
        let mut profile = self.profile();
        let occupation = self.pick(&OCCUPATIONS);

        // Too big already: drop what can be dropped, oldest jobs first.
        while json_len(&profile) > target_bytes && profile.professional.work.len() > 1 {
            profile.professional.work.pop();
        }
        if json_len(&profile) > target_bytes {
            let pro = &mut profile.professional;
            pro.summary = None;
            pro.education.clear();
            pro.skills.truncate(1);
            pro.licences.clear();
            pro.languages.truncate(1);
        }

        // Too small: add earlier jobs whose description fills the gap, at most 4 KiB each so
        // every string stays well under the per-string limit.
        let chunk = MAX_STRING_BYTES / 2;
        let mut year = REFERENCE_YEAR.saturating_sub(20);
        loop {
            let before = json_len(&profile);
            if before >= target_bytes {
                break;
            }
            let employer = self.pick(occupation.employers);
            profile.professional.work.push(Work {
                employer: employer.to_owned(),
                title: occupation.title.to_owned(),
                start: Some(format!("{year}-01")),
                end: Some(format!("{year}-12")),
                description: Some(String::new()),
            });
            year = year.saturating_sub(1);
            let with_entry = json_len(&profile);
            if with_entry > target_bytes {
                // Even an empty entry overshoots: keep whichever is closer.
                if with_entry - target_bytes > target_bytes - before {
                    profile.professional.work.pop();
                }
                break;
            }
            let fill = (target_bytes - with_entry).min(chunk);
            let text = filler(occupation.duties, fill);
            if let Some(work) = profile.professional.work.last_mut() {
                work.description = Some(text);
            }
        }
        profile
    }

    fn pick<T: Copy + Default>(&mut self, items: &[T]) -> T {
        items.choose(&mut self.rng).copied().unwrap_or_default()
    }

    /// `YYYYMMDD-NNNC`: a coordination number (day + 60), serial 980–999, Luhn check digit C.
    fn personal_number(&mut self, year: u16) -> String {
        let month: u8 = self.rng.gen_range(1..=12);
        let day: u8 = self.rng.gen_range(1..=28) + 60;
        let serial: u16 = self.rng.gen_range(980..=999);
        let short = format!("{:02}{month:02}{day:02}{serial:03}", year % 100);
        let digits: Vec<u8> = short.bytes().map(|b| b - b'0').collect();
        let check = luhn_check_digit(&digits);
        format!("{year:04}{month:02}{day:02}-{serial:03}{check}")
    }

    fn contact(&mut self, first: &str, last: &str, city: City) -> Contact {
        let domain = self.pick(&["example.org", "example.com", "example.net"]);
        let number = if self.rng.gen_bool(0.3) {
            self.rng.gen_range(1..=99).to_string()
        } else {
            String::new()
        };
        let email = format!(
            "{}.{}{number}@{domain}",
            ascii_lower(first),
            ascii_lower(last)
        );
        let phone = format!("070-174 06 {:02}", self.rng.gen_range(5..=99));
        let prefix = self.pick(city.1);
        let street = self.pick(&STREETS);
        let mut street = format!("{street} {}", self.rng.gen_range(1..=80));
        if self.rng.gen_bool(0.4) {
            street.push_str(&format!(", lgh {}", self.rng.gen_range(1001..=1403)));
        }
        Contact {
            email: Some(email),
            phone: self.rng.gen_bool(0.9).then_some(phone),
            address: Some(Address {
                street: Some(street),
                postal_code: Some(format!("{prefix} {:02}", self.rng.gen_range(10..=99))),
                city: Some(city.0.to_owned()),
                country: Some("SE".to_owned()),
            }),
        }
    }

    fn professional(
        &mut self,
        origin: &Origin,
        occupation: &Occupation,
        city: &str,
        birth_year: u16,
    ) -> Professional {
        let abroad = origin.nationality.is_some();
        let home_city = self.pick(origin.home_cities);

        // Work history, most recent first, ending (or still going) in the reference year.
        let jobs = self.rng.gen_range(1..=4);
        let earliest = birth_year + 17;
        let mut end_year = REFERENCE_YEAR;
        let mut work = Vec::with_capacity(jobs);
        for index in 0..jobs {
            let length = self.rng.gen_range(1..=5);
            let start_year = end_year.saturating_sub(length).max(earliest);
            if start_year > end_year {
                break;
            }
            // The oldest job of a refugee-background candidate is often from before arrival.
            let employer = if abroad && index + 1 == jobs && index > 0 {
                format!("{} i {home_city}", occupation.employer_abroad)
            } else {
                self.pick(occupation.employers).to_owned()
            };
            let current = index == 0 && self.rng.gen_bool(0.5);
            let duties = self.pick(occupation.duties);
            let start_month: u8 = self.rng.gen_range(1..=12);
            // INVARIANT: a job ends no earlier than it starts.
            let first_end_month = if start_year == end_year {
                start_month
            } else {
                1
            };
            let end_month: u8 = self.rng.gen_range(first_end_month..=12);
            work.push(Work {
                employer,
                title: occupation.title.to_owned(),
                start: Some(format!("{start_year}-{start_month:02}")),
                end: (!current).then(|| format!("{end_year}-{end_month:02}")),
                description: Some(duties.to_owned()),
            });
            end_year = start_year.saturating_sub(1);
        }
        let years: u16 = REFERENCE_YEAR.saturating_sub(end_year).max(1);

        let (level, field, school) = occupation.education;
        let mut education = Vec::new();
        let institution = if abroad && self.rng.gen_bool(0.5) {
            format!("{} i {home_city}", school_abroad(school))
        } else {
            format!("{school} i {city}")
        };
        education.push(Education {
            institution,
            level: Some(level.to_owned()),
            field: (!field.is_empty()).then(|| field.to_owned()),
            start: None,
            end: Some(format!("{}", (birth_year + 19).min(REFERENCE_YEAR))),
        });
        if abroad {
            let course = self.pick(&["kurs C", "kurs D"]);
            education.push(Education {
                institution: format!("SFI {city}"),
                level: Some("svenska för invandrare".to_owned()),
                field: Some(course.to_owned()),
                start: Some(format!("{}-08", REFERENCE_YEAR - 3)),
                end: Some(format!("{}-06", REFERENCE_YEAR - 2)),
            });
        }

        let mut skills: Vec<Skill> = Vec::new();
        let mut own: Vec<&str> = occupation.skills.to_vec();
        own.shuffle(&mut self.rng);
        let count = self.rng.gen_range(2..=own.len().max(2));
        for name in own.into_iter().take(count) {
            let level = self.pick(&["grundläggande", "god", "mycket god", "expert"]);
            skills.push(Skill {
                name: name.to_owned(),
                taxonomy_id: None,
                level: self.rng.gen_bool(0.6).then(|| level.to_owned()),
            });
        }
        if self.rng.gen_bool(0.5) {
            skills.push(Skill {
                name: self.pick(&GENERAL_SKILLS).to_owned(),
                taxonomy_id: None,
                level: None,
            });
        }

        let languages = self.languages(origin);
        let mut licences: Vec<String> = occupation
            .licences
            .iter()
            .filter(|_| self.rng.gen_bool(0.6))
            .map(|l| (*l).to_owned())
            .collect();
        if !licences.iter().any(|l| l.contains("körkort")) && self.rng.gen_bool(0.5) {
            licences.push("B-körkort".to_owned());
        }

        let title = capitalise(occupation.title);
        let summary = self.pick(&[
            "Söker arbete i",
            "Vill utvecklas vidare inom yrket, gärna i",
            "Flexibel med arbetstider och söker tjänst i",
        ]);
        Professional {
            headline: Some(format!("{title} med {years} års erfarenhet")),
            summary: Some(format!("{summary} {city} med omnejd.")),
            skills,
            work,
            education,
            languages,
            licences,
        }
    }

    fn languages(&mut self, origin: &Origin) -> Vec<Language> {
        let mut languages = vec![Language {
            language: origin.language.to_owned(),
            fluency: Some("C2".to_owned()),
        }];
        if origin.nationality.is_some() {
            let swedish = self.pick(&CEFR_LEARNED);
            languages.push(Language {
                language: "svenska".to_owned(),
                fluency: Some(swedish.to_owned()),
            });
        }
        let english = self.pick(&CEFR_LEARNED);
        if origin.nationality.is_none() || self.rng.gen_bool(0.6) {
            languages.push(Language {
                language: "engelska".to_owned(),
                fluency: Some(english.to_owned()),
            });
        }
        if self.rng.gen_bool(0.3) {
            if let Some(other) = origin.other_languages.choose(&mut self.rng) {
                let level = self.pick(&CEFR_SIDE);
                languages.push(Language {
                    language: (*other).to_owned(),
                    fluency: Some(level.to_owned()),
                });
            }
        }
        languages
    }

    fn special(&mut self, origin: &Origin) -> Special {
        let mut special = Special::default();
        if origin.nationality.is_some() && self.rng.gen_bool(0.6) {
            special.nationality = origin.nationality.map(str::to_owned);
            special.asylum_status = origin
                .statuses
                .choose(&mut self.rng)
                .map(|s| (*s).to_owned());
            if self.rng.gen_bool(0.1) {
                special.ethnic_origin = origin
                    .ethnic_origins
                    .choose(&mut self.rng)
                    .map(|s| (*s).to_owned());
            }
        }
        if self.rng.gen_bool(0.1) {
            special.health = Some(self.pick(&HEALTH).to_owned());
        }
        special
    }
}

/// The compact JSON length of a profile (synthetic data: no need to count without copying).
fn json_len(profile: &Profile) -> usize {
    serde_json::to_vec(profile).map(|v| v.len()).unwrap_or(0)
}

/// Text of at most `bytes` bytes (and at least `bytes - 3`, a char boundary away) made of
/// the occupation's duties, repeated.
fn filler(duties: &[&str], bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 200);
    let mut sentences = duties.iter().cycle();
    while text.len() < bytes {
        match sentences.next() {
            Some(sentence) => {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(sentence);
            }
            None => text.push_str("Arbete enligt instruktion."),
        }
    }
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Lowercase ASCII for an e-mail local part: `Ekström` -> `ekstrom`.
fn ascii_lower(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'å' | 'ä' | 'Å' | 'Ä' | 'à' | 'á' => Some('a'),
            'ö' | 'Ö' | 'ó' => Some('o'),
            'é' | 'è' | 'É' => Some('e'),
            ' ' => Some('-'),
            c if c.is_ascii_alphanumeric() || c == '-' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The school abroad corresponding to a kind of Swedish school.
fn school_abroad(school: &str) -> &'static str {
    match school {
        "Tekniska högskolan" | "Universitetet" | "Högskolan" => "Universitetet",
        "Yrkeshögskolan" => "Tekniska institutet",
        _ => "Yrkesskolan",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(profile: &Profile) -> Vec<u8> {
        serde_json::to_vec(profile).unwrap()
    }

    fn luhn_valid(digits: &[u8]) -> bool {
        // The standard check over all digits, check digit included: weights 1, 2 from the right.
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                let v = u32::from(d) * if i % 2 == 1 { 2 } else { 1 };
                if v > 9 {
                    v - 9
                } else {
                    v
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    #[test]
    fn luhn_matches_known_answers() {
        // Skatteverket's published example 811218-9876 and the classic 640823-3234.
        assert_eq!(luhn_check_digit(&[8, 1, 1, 2, 1, 8, 9, 8, 7]), 6);
        assert_eq!(luhn_check_digit(&[6, 4, 0, 8, 2, 3, 3, 2, 3]), 4);
        assert!(luhn_valid(&[8, 1, 1, 2, 1, 8, 9, 8, 7, 6]));
        assert!(!luhn_valid(&[8, 1, 1, 2, 1, 8, 9, 8, 7, 5]));
    }

    #[test]
    fn same_seed_same_profiles() {
        let mut a = Synth::new(42);
        let mut b = Synth::new(42);
        for _ in 0..50 {
            assert_eq!(bytes(&a.profile()), bytes(&b.profile()));
        }
        assert_eq!(
            bytes(&a.profile_with_marker("M")),
            bytes(&b.profile_with_marker("M"))
        );
        assert_eq!(
            bytes(&a.profile_of_size(4096)),
            bytes(&b.profile_of_size(4096))
        );
        let mut c = Synth::new(43);
        assert_ne!(bytes(&Synth::new(42).profile()), bytes(&c.profile()));
    }

    #[test]
    fn every_profile_validates_and_round_trips() {
        let mut synth = Synth::new(7);
        for _ in 0..500 {
            let profile = synth.profile();
            profile.validate().unwrap();
            let json = bytes(&profile);
            let parsed = Profile::from_json(&json).unwrap();
            assert_eq!(bytes(&parsed), json);
            let via_document = Profile::from_document(&json).unwrap();
            assert_eq!(bytes(&via_document), json);
        }
    }

    #[test]
    fn personal_numbers_are_synthetic_coordination_numbers_with_valid_luhn() {
        let mut synth = Synth::new(11);
        for _ in 0..300 {
            let profile = synth.profile();
            let number = profile.identity.personal_number.clone().unwrap();
            let year = profile.identity.birth_year.unwrap();
            let b = number.as_bytes();
            assert_eq!(number.len(), 13, "{number}");
            assert_eq!(b[8], b'-', "{number}");
            assert!(number.starts_with(&year.to_string()), "{number}");
            let digits: Vec<u8> = number
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|d| d - b'0')
                .collect();
            assert_eq!(digits.len(), 12);
            let month = digits[4] * 10 + digits[5];
            let day = digits[6] * 10 + digits[7];
            assert!((1..=12).contains(&month), "{number}");
            assert!(
                (61..=88).contains(&day),
                "coordination number day: {number}"
            );
            let serial =
                u16::from(digits[8]) * 100 + u16::from(digits[9]) * 10 + u16::from(digits[10]);
            assert!((980..=999).contains(&serial), "{number}");
            assert!(luhn_valid(&digits[2..]), "{number}");
        }
    }

    #[test]
    fn the_marker_is_where_promised() {
        let marker = "MARKER-7f3a9c";
        let mut synth = Synth::new(3);
        for _ in 0..50 {
            let p = synth.profile_with_marker(marker);
            p.validate().unwrap();
            assert!(p.identity.name.contains(marker));
            assert!(p.contact.email.as_deref().unwrap().contains(marker));
            assert!(p.professional.work[0]
                .description
                .as_deref()
                .unwrap()
                .contains(marker));
            let special = p
                .group_json(crate::vocabulary::FieldGroup::Special)
                .unwrap();
            assert!(String::from_utf8_lossy(&special).contains(marker));
            for group in [
                crate::vocabulary::FieldGroup::Identity,
                crate::vocabulary::FieldGroup::Contact,
                crate::vocabulary::FieldGroup::Professional,
            ] {
                let json = p.group_json(group).unwrap();
                assert!(String::from_utf8_lossy(&json).contains(marker), "{group}");
            }
        }
        assert!(!bytes(&Synth::new(3).profile())
            .windows(6)
            .any(|w| w == b"MARKER"));
    }

    #[test]
    fn profile_of_size_hits_the_target() {
        let mut synth = Synth::new(5);
        for _ in 0..20 {
            let profile = synth.profile_of_size(4096);
            let size = bytes(&profile).len();
            assert!((3686..=4506).contains(&size), "4096 ± 10 %: got {size}");
            profile.validate().unwrap();
        }
        for target in [2_000, 16_384, 100_000, 250_000] {
            let profile = synth.profile_of_size(target);
            let size = bytes(&profile).len();
            assert!(size.abs_diff(target) * 10 <= target, "{target}: got {size}");
            profile.validate().unwrap();
            Profile::from_json(&bytes(&profile)).unwrap();
        }
        // Below the smallest profile: as small as it gets, still a valid profile.
        let tiny = synth.profile_of_size(10);
        tiny.validate().unwrap();
        assert_eq!(tiny.professional.work.len(), 1);
    }

    #[test]
    fn the_population_looks_like_the_brief() {
        let mut synth = Synth::new(2024);
        let n = 4000;
        let (mut protected, mut consent, mut special, mut swedish) = (0, 0, 0, 0);
        let mut names = std::collections::BTreeSet::new();
        let mut languages = std::collections::BTreeSet::new();
        for _ in 0..n {
            let p = synth.profile();
            protected += usize::from(p.control.protected);
            consent += usize::from(p.control.consents.employer_contact);
            let s = &p.special;
            special += usize::from(s.nationality.is_some() || s.health.is_some());
            swedish += usize::from(
                p.special.nationality.is_none()
                    && p.professional.languages[0].language == "svenska",
            );
            names.insert(p.identity.name.clone());
            for l in &p.professional.languages {
                languages.insert(l.language.clone());
                let fluency = l.fluency.as_deref().unwrap();
                assert!(
                    ["A1", "A2", "B1", "B2", "C1", "C2"].contains(&fluency),
                    "{fluency}"
                );
            }
            let email = p.contact.email.as_deref().unwrap();
            assert!(email.is_ascii() && email.rsplit_once('@').unwrap().1.starts_with("example."));
            if let Some(phone) = &p.contact.phone {
                assert!(phone.starts_with("070-174 06 "), "{phone}");
            }
            let postal = p
                .contact
                .address
                .as_ref()
                .unwrap()
                .postal_code
                .as_deref()
                .unwrap();
            assert!(
                postal.len() == 6 && postal.as_bytes()[3] == b' ',
                "{postal}"
            );
        }
        let share = |k: usize| k as f64 / n as f64;
        assert!(
            (0.03..0.07).contains(&share(protected)),
            "protected {}",
            share(protected)
        );
        assert!(
            (0.36..0.44).contains(&share(consent)),
            "consent {}",
            share(consent)
        );
        assert!(
            (0.2..0.5).contains(&share(special)),
            "special {}",
            share(special)
        );
        assert!(
            (0.45..0.55).contains(&share(swedish)),
            "swedish {}",
            share(swedish)
        );
        assert!(names.contains("Anna Lindqvist") || names.len() > 500);
        for expected in [
            "svenska",
            "arabiska",
            "dari",
            "tigrinja",
            "somaliska",
            "ukrainska",
            "engelska",
        ] {
            assert!(languages.contains(expected), "{expected}");
        }
    }

    #[test]
    fn ndjson_writes_one_profile_per_line() {
        let mut out = Vec::new();
        ndjson(25, 9, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 25);
        let mut synth = Synth::new(9);
        for line in lines {
            let parsed = Profile::from_json(line.as_bytes()).unwrap();
            assert_eq!(
                bytes(&parsed),
                bytes(&synth.profile()),
                "same stream as Synth::new(seed)"
            );
        }
        let mut empty = Vec::new();
        ndjson(0, 9, &mut empty).unwrap();
        assert!(empty.is_empty());
    }
}
