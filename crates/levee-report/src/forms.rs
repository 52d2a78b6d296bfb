//! The personal-data part (GDPR Art. 33) from hunt's findings and the
//! routes' tags, and the ICO form's and the NCSC's questions, each answer
//! filled from the data or left "to complete".

use crate::{
    filled, fmt_ms, hunt_hit, to_complete, At, Exfil, Field, Impact, Input, PersonalData, RouteTag,
};

fn categories_of(routes: &[RouteTag], site: &str, paths: &[String]) -> (Vec<String>, Vec<String>) {
    let mut cats = Vec::new();
    let mut special = Vec::new();
    for r in routes
        .iter()
        .filter(|r| r.site.is_empty() || r.site == site)
    {
        let hit = paths.iter().any(|p| {
            r.paths
                .iter()
                .any(|rp| p.to_ascii_lowercase().starts_with(&rp.to_ascii_lowercase()))
        });
        if !hit {
            continue;
        }
        if r.personal || !r.special.is_empty() {
            cats.push(format!("personal data served by route {:?}", r.name));
        }
        if r.export {
            cats.push(format!("bulk exports of route {:?}", r.name));
        }
        for s in &r.special {
            if !special.contains(s) {
                special.push(s.clone());
            }
        }
    }
    (cats, special)
}

pub(crate) fn personal_data(input: &Input, sc: &dyn Fn(&str) -> String) -> PersonalData {
    let inc = &input.incident;
    let detected = inc.opened_unix_ms;
    let deadline = detected + 72 * 3_600_000;
    let hours_left = (deadline as f64 - input.now_ms as f64) / 3_600_000.0;
    let tell = vec![
        "what happened and when (the timeline above), and that it was a denial-of-service attack (a cyber incident)".to_string(),
        "whether personal data was affected, with the approximate numbers of records and data subjects and the categories".into(),
        "the likely consequences for the people concerned".into(),
        "the measures taken and proposed (above), and the contact point (the DPO)".into(),
        "if more than 72 hours have passed since you became aware, the reasons for the delay (Art. 33(1)); information may be given in phases (Art. 33(4))".into(),
    ];
    let Some(h) = &input.hunt else {
        return PersonalData {
            assessed: false,
            verdict: "not assessed".into(),
            conclusion: "Not assessed: no levee hunt findings were given. This report does not say whether personal data was affected. Run `levee hunt ACCESS_LOGS --json F` over the incident's period and pass `--hunt F`.".into(),
            checked: Vec::new(),
            exfiltration: Vec::new(),
            compromise: Vec::new(),
            rule_findings: Vec::new(),
            records_estimate: 0,
            subjects_estimate: 0,
            categories: Vec::new(),
            special_categories: Vec::new(),
            detected_ms: detected,
            deadline_ms: deadline,
            hours_left,
            notify: "cannot tell yet: the logs have not been reviewed".into(),
            consequences: vec!["Unavailability of the service to its users during the attack.".into()],
            tell_the_regulator: tell,
        };
    };
    let lines: u64 = h.files.iter().map(|f| f.lines).sum();
    let period = match (h.first_ms, h.last_ms) {
        (Some(a), Some(b)) => format!(
            "from {} to {}",
            fmt_ms(u64::try_from(a).unwrap_or(0)),
            fmt_ms(u64::try_from(b).unwrap_or(0))
        ),
        _ => "(no dated records)".into(),
    };
    let mut checked = vec![
        format!(
            "{} log file(s) ({}), {lines} lines, {} requests {period}; {} malformed line(s).",
            h.files.len(),
            h.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", "),
            h.records,
            h.malformed
        ),
        format!(
            "{} Sigma rules and {} correlation rules; {} indicators of compromise.",
            h.rules_loaded, h.correlations_loaded, h.iocs_loaded
        ),
        "Detectors: egress outliers, bulk downloads, sequential ID enumeration, bulk access to personal data, exports without login, probing, off-hours use.".into(),
    ];
    let covers = match (h.first_ms, h.last_ms) {
        (Some(a), Some(b)) => {
            let end = inc.closed_unix_ms.unwrap_or(input.now_ms);
            a <= i64::try_from(inc.opened_unix_ms).unwrap_or(i64::MAX)
                && b >= i64::try_from(end)
                    .unwrap_or(i64::MAX)
                    .saturating_sub(60_000)
        }
        _ => false,
    };
    if !covers {
        checked.push("Warning: the logs reviewed do not cover the whole incident; review the missing period before concluding.".into());
    }
    let mut exfil: Vec<Exfil> = Vec::new();
    let mut categories: Vec<String> = Vec::new();
    let mut special: Vec<String> = Vec::new();
    for d in h.detections.iter().filter(|d| d.is_exfiltration()) {
        let routes = d.paths();
        let (c, s) = categories_of(&input.routes, &inc.site, &routes);
        for x in &c {
            if !categories.contains(x) {
                categories.push(x.clone());
            }
        }
        for x in &s {
            if !special.contains(x) {
                special.push(x.clone());
            }
        }
        exfil.push(Exfil {
            detector: d.detector.clone(),
            level: d.level.clone(),
            client: sc(&d.client),
            records: d.records_served,
            bytes: d.bytes_served,
            routes,
            categories: c.into_iter().chain(s).collect(),
            summary: sc(&d.summary),
        });
    }
    let compromise: Vec<hunt_hit::Hit> = h
        .ioc_findings
        .iter()
        .map(|i| hunt_hit::Hit {
            kind: i.kind.clone(),
            value: if i.kind == "ip" {
                sc(&i.value)
            } else {
                i.value.clone()
            },
            source: i.source.clone(),
            count: i.count,
            first_ms: i.first_ms,
            last_ms: i.last_ms,
        })
        .collect();
    // Per client, the largest of its findings (several findings about one
    // download must not add up to more than was served).
    let mut per: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for d in h.detections.iter().filter(|d| d.is_exfiltration()) {
        let e = per.entry(d.client.as_str()).or_default();
        e.0 = e.0.max(d.records_served);
        e.1 = e.1.max(d.bytes_served);
    }
    let records: u64 = per.values().map(|x| x.0).sum();
    let bytes: u64 = per.values().map(|x| x.1).sum();
    let found = !exfil.is_empty() || !compromise.is_empty();
    let (verdict, conclusion, notify) = if found {
        (
            "found",
            format!(
                "Possible exfiltration or compromise: {} exfiltration finding(s) from {} client(s), about {records} records and {} MiB served, and {} indicator(s) of compromise seen. Treat this as a personal data breach until shown otherwise.",
                exfil.len(),
                per.len(),
                bytes >> 20,
                compromise.len()
            ),
            if special.is_empty() {
                "likely required: personal data may have left; notify the regulator within 72 hours of becoming aware unless the breach is unlikely to result in a risk to people (Art. 33(1))".to_string()
            } else {
                format!("likely required, and high risk: special-category data ({}) may have left; notify the regulator within 72 hours and consider telling the people concerned (Art. 34)", special.join(", "))
            },
        )
    } else {
        (
            "none found",
            format!(
                "No exfiltration found and no known indicator of compromise seen in the logs checked ({} requests {period}), by the detectors, {} rules and {} indicators listed above ({} Sigma finding(s) listed for review). This is what the logs show, not a proof that nothing left by another path.",
                h.records,
                h.rules_loaded + h.correlations_loaded,
                h.iocs_loaded,
                h.findings.len()
            ),
            "likely not required for personal data, if the availability breach alone is unlikely to result in a risk to people; record the decision and its reasons (Art. 33(5))".into(),
        )
    };
    let mut consequences =
        vec!["Unavailability of the service to its users during the attack.".to_string()];
    if found {
        consequences.push("Loss of confidentiality of the personal data served to the clients named, with risks of fraud, phishing or identity theft.".into());
    }
    for s in &special {
        consequences.push(format!("Exposure of special-category data ({s}): risk of discrimination, harassment or other serious harm to the people concerned."));
    }
    PersonalData {
        assessed: true,
        verdict: verdict.into(),
        conclusion,
        checked,
        exfiltration: exfil,
        compromise,
        rule_findings: h
            .findings
            .iter()
            .map(|f| hunt_hit::RuleHit {
                title: f.title.clone(),
                level: f.level.clone(),
                author: f.author.clone(),
                count: f.count,
                clients: f.clients,
            })
            .collect(),
        records_estimate: records,
        subjects_estimate: records,
        categories,
        special_categories: special,
        detected_ms: detected,
        deadline_ms: deadline,
        hours_left,
        notify,
        consequences,
        tell_the_regulator: tell,
    }
}

pub(crate) fn ico_form(
    input: &Input,
    impact: &Impact,
    p: &PersonalData,
    summary: &str,
) -> Vec<Field> {
    let inc = &input.incident;
    let mut f = vec![
        match &input.organisation {
            Some(o) => filled("Organisation", o.clone()),
            None => to_complete("Organisation", "name, registration number and the contact point (DPO) on an uncompromised channel"),
        },
        filled("Report type", "Initial report (information may follow in phases, Art. 33(4))".into()),
        filled("What has happened?", summary.to_string()),
        filled("Was the breach caused by a cyber incident?", "Yes: a denial-of-service attack".into()),
        filled("How did you find out about the breach?", format!("The edge (Levee) detected it automatically: {}", inc.why)),
        filled("When did the breach happen?", format!("{} (to {})", fmt_ms(inc.opened_unix_ms), inc.closed_unix_ms.map_or("still open".into(), fmt_ms))),
        filled("When did you discover the breach?", format!("{} (automatic detection; the 72 hours run from when you became aware that personal data was affected)", fmt_ms(p.detected_ms))),
        filled("Has the confidentiality, integrity and/or availability of personal data been affected?", match p.verdict.as_str() {
            "found" => "Availability (the attack); confidentiality possibly (see the personal data findings)".into(),
            "none found" => "Availability (the attack); no sign of loss of confidentiality in the logs checked".into(),
            _ => "Availability (the attack); confidentiality not assessed".into(),
        }),
        filled("Impact on your organisation", format!("{} ({})", impact.ico_impact, impact.functional)),
        filled("Recovery time", impact.recoverability.clone()),
    ];
    if p.assessed {
        let mut cats = p.categories.clone();
        cats.extend(
            p.special_categories
                .iter()
                .map(|s| format!("special category: {s}")),
        );
        f.push(if p.verdict == "found" && cats.is_empty() {
            to_complete("Categories of personal data included", "the routes in the findings carry no tags: name the data they serve (tag routes with personal/special in the edge's config and give --config)")
        } else if cats.is_empty() {
            filled("Categories of personal data included", "None found affected".into())
        } else {
            filled("Categories of personal data included", cats.join("; "))
        });
        f.push(filled(
            "Number of personal data records concerned",
            format!(
                "about {} (estimated from the answers served)",
                p.records_estimate
            ),
        ));
        f.push(if p.verdict == "found" {
            to_complete(
                "How many data subjects could be affected?",
                &format!(
                    "at most about {} (one per record); confirm from the data",
                    p.subjects_estimate
                ),
            )
        } else {
            filled(
                "How many data subjects could be affected?",
                "0 found".into(),
            )
        });
    } else {
        for q in [
            "Categories of personal data included",
            "Number of personal data records concerned",
            "How many data subjects could be affected?",
        ] {
            f.push(to_complete(
                q,
                "not assessed: run levee hunt over the period and pass --hunt",
            ));
        }
    }
    f.push(to_complete(
        "Categories of data subjects affected",
        "e.g. members, supporters, donors, staff, children",
    ));
    f.push(filled("Potential consequences", p.consequences.join(" ")));
    f.push(to_complete(
        "Likelihood of the consequences",
        "a person's judgement",
    ));
    f.push(to_complete(
        "Staff involvement and training",
        "not a question the logs answer",
    ));
    f.push(filled(
        "Containment and recovery",
        "The edge's measures, listed under Measures taken".into(),
    ));
    f.push(to_complete(
        "Have you told the data subjects?",
        "yes/no, and when",
    ));
    f.push(to_complete(
        "Have you told other organisations?",
        "e.g. the NCSC (report.ncsc.gov.uk), the police (Action Fraud), other regulators",
    ));
    f
}

pub(crate) fn ncsc(input: &Input, summary: &str, measures: &[At]) -> Vec<Field> {
    let inc = &input.incident;
    vec![
        to_complete("1. Who you are", "name"),
        match &input.organisation {
            Some(o) => filled("2. The organisation", o.clone()),
            None => to_complete("2. The organisation", "name"),
        },
        to_complete("3. Your role", "role"),
        to_complete("4. Contact details", "phone, and an email address on an uncompromised system"),
        filled("5. Summary, including any impact to services and/or users", summary.to_string()),
        filled("6. Investigations and mitigations performed or planned", format!("{} measure(s) taken by the edge (listed in the report); logs reviewed with levee hunt: {}", measures.len(), if input.hunt.is_some() { "yes" } else { "not yet" })),
        filled("7. Output of any technical analysis", format!("Vectors, peaks and indicators in this report and its STIX 2.1 bundle; incident record {}", inc.id)),
        to_complete("8. Who else has been informed", "e.g. the ICO, the police, your hosting provider"),
        to_complete("9. Planned next steps", "a person's plan"),
    ]
}
