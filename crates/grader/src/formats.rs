//! The report in the formats course tools read: Gradescope's `results.json`, JUnit XML
//! and an HTML page, beside the grader's own Markdown and JSON ([`Report::text`],
//! [`Report::json`]).
//!
//! The fields each format requires are written down in `crates/grader/schemas/` (from
//! the formats' documentation), and the tests hold every format to its file.

use std::fmt::Write as _;

use conformance::rules::RULES;
use serde_json::{Value, json};

use crate::report::Report;

/// The points of the correctness part, shared equally by the rules.
pub const RULE_POINTS: f64 = 60.0;

/// The points of the performance part.
pub const PERFORMANCE_POINTS: f64 = 40.0;

/// How a report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The report for people (the default).
    Markdown,
    /// The grader's own JSON: every rule with its explanation, the performance numbers,
    /// the grade and its formula.
    Json,
    /// Gradescope's `results.json`: one test per rule and one for performance.
    Gradescope,
    /// JUnit XML: one testcase per rule (and one for performance).
    Junit,
}

impl Format {
    /// `report` in this format.
    pub fn render(self, report: &Report) -> String {
        match self {
            Format::Markdown => report.text(),
            Format::Json => pretty(&report.json()),
            Format::Gradescope => pretty(&gradescope(report)),
            Format::Junit => junit(report),
        }
    }

    /// The file extension of a report in this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Gradescope => "results.json",
            Format::Junit => "xml",
        }
    }
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// The points one rule is worth.
fn rule_points(report: &Report) -> f64 {
    RULE_POINTS / report.rules.len().max(RULES.len()) as f64
}

/// Gradescope's `results.json` for `report`: the overall score, the report's header as
/// the submission's output, and one test per rule and one for performance, each with
/// its score, its maximum and the report's text about it. A grade that is withheld or a
/// submission that does not build scores 0, with one test that says why.
pub fn gradescope(report: &Report) -> Value {
    let header = format!(
        "Submission {}: {}\n\n{}",
        report.name,
        report.settings(),
        crate::GRADE_FORMULA
    );
    let mut tests = Vec::new();
    if report.withheld() {
        for refusal in &report.refused {
            tests.push(json!({
                "name": format!("dependency policy: {}", refusal.dependency),
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": format!("{refusal}\n\nThe grade is withheld: nothing was graded."),
                "visibility": "visible",
            }));
        }
    } else if let Some(failure) = &report.build_failure {
        let rule = failure
            .rule
            .as_deref()
            .unwrap_or("the submission does not compile");
        tests.push(json!({
            "name": "build",
            "score": 0.0,
            "max_score": RULE_POINTS + PERFORMANCE_POINTS,
            "status": "failed",
            "output": format!("{rule}\n\n{}", failure.compiler),
            "visibility": "visible",
        }));
    } else {
        let points = rule_points(report);
        for (rule, outcome) in &report.rules {
            let explanation = conformance::rules::explain(rule).unwrap_or_default();
            let output = match outcome.details(rule) {
                Some(details) => format!("{}\n\n{details}", outcome.heading(rule)),
                None => format!("{}: {explanation}", outcome.summary()),
            };
            tests.push(json!({
                "name": rule,
                "score": if outcome.kept() { points } else { 0.0 },
                "max_score": points,
                "status": if outcome.kept() { "passed" } else { "failed" },
                "output": output,
                "output_format": "md",
                "visibility": "visible",
            }));
        }
        let mut output = String::new();
        report.performance_text(&mut output);
        tests.push(json!({
            "name": "performance",
            "score": PERFORMANCE_POINTS * report.performance_share(),
            "max_score": PERFORMANCE_POINTS,
            "status": if report.performance_index() > 0.0 { "passed" } else { "failed" },
            "output": output,
            "output_format": "md",
            "visibility": "visible",
        }));
    }
    json!({
        "score": if report.withheld() { 0.0 } else { report.grade() },
        "execution_time": report.seconds.ceil() as u64,
        "output": header,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    })
}

/// JUnit XML for `report`: one testsuite for the submission, one testcase per rule
/// (with a `<failure>` holding the report's text when it is lost) and one for the
/// performance part; the settings as properties. A refused or unbuildable submission
/// gives one failing testcase that says why.
pub fn junit(report: &Report) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let mut case = |name: &str, failure: Option<(&str, String)>| {
        let _ = write!(
            cases,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(&report.name),
            xml(name)
        );
        match failure {
            None => cases.push_str("/>\n"),
            Some((message, text)) => {
                failures += 1;
                let _ = write!(
                    cases,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                    xml(message),
                    xml(name),
                    xml(&text)
                );
            }
        }
    };
    if report.withheld() {
        for refusal in &report.refused {
            case(
                &format!("dependency policy: {}", refusal.dependency),
                Some(("not allowed; the grade is withheld", refusal.to_string())),
            );
        }
    } else if let Some(failure) = &report.build_failure {
        let rule = failure.rule.as_deref().unwrap_or("does not compile");
        case("build", Some((rule, failure.compiler.clone())));
    } else {
        for (rule, outcome) in &report.rules {
            let failure = outcome.details(rule).map(|details| {
                (
                    outcome.status(),
                    format!("{}\n\n{details}", outcome.heading(rule)),
                )
            });
            case(rule, failure);
        }
        let mut text = String::new();
        report.performance_text(&mut text);
        let failure = (report.performance_index() <= 0.0).then_some(("no performance index", text));
        case("performance", failure);
    }
    let tests = cases.matches("<testcase ").count();
    let properties = [
        ("region", report.region.to_string()),
        ("seed", report.seed.to_string()),
        ("grade", format!("{:.1}", report.grade())),
        ("withheld", report.withheld().to_string()),
    ]
    .iter()
    .fold(String::new(), |mut out, (name, value)| {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            xml(value)
        );
        out
    });
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"heaplab-grade\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">\n  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\">\n    <properties>\n{properties}    </properties>\n{cases}  </testsuite>\n</testsuites>\n",
        time = report.seconds,
        name = xml(&report.name),
    )
}

/// `text` escaped for XML and HTML text and attribute values.
pub use trace::escape_xml as xml;

/// An HTML page around `body`, with `title`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{title}</title>\n<style>\nbody {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}\ntable {{ border-collapse: collapse; }}\ntd, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}\n.lost {{ color: #a00; }}\npre {{ background: #f4f4f4; padding: 0.6em; overflow-x: auto; }}\n</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        title = xml(title)
    )
}

/// The report as an HTML page: the settings, each rule's outcome (a lost rule links to
/// its failure page when the suite wrote one, and to its section below), the
/// performance part and the grade.
pub fn html(report: &Report) -> String {
    let mut body = format!(
        "<h1>Grade report: {}</h1>\n<p>{}</p>\n",
        xml(&report.name),
        xml(&report.settings())
    );
    if report.withheld() || report.build_failure.is_some() {
        let _ = writeln!(body, "<pre>{}</pre>", xml(&report.text()));
        return page(&format!("Grade report: {}", report.name), &body);
    }
    let _ = writeln!(
        body,
        "<h2>Correctness: {} of {} rules kept</h2>\n<table>\n<tr><th>rule</th><th>result</th><th>failure page</th></tr>",
        report.kept(),
        report.rules.len()
    );
    for (rule, outcome) in &report.rules {
        let (class, result) = if outcome.kept() {
            ("kept", xml(outcome.status()))
        } else {
            (
                "lost",
                format!("<a href=\"#{rule}\">{}</a>", xml(outcome.status())),
            )
        };
        let link = match outcome.failure_page() {
            Some(path) => format!(
                "<a href=\"file://{}\">failure page</a>",
                xml(&path.display().to_string())
            ),
            None => String::new(),
        };
        let _ = writeln!(
            body,
            "<tr class=\"{class}\"><td><code>{rule}</code></td><td>{result}</td><td>{link}</td></tr>"
        );
    }
    body.push_str("</table>\n");
    for (rule, outcome) in &report.rules {
        if let Some(details) = outcome.details(rule) {
            let _ = writeln!(
                body,
                "<h3 id=\"{rule}\" class=\"lost\">{}</h3>\n<pre>{}</pre>",
                xml(&outcome.heading(rule)),
                xml(&details)
            );
        }
    }
    let mut performance = String::new();
    report.performance_text(&mut performance);
    let _ = writeln!(
        body,
        "<h2>Performance</h2>\n<pre>{}</pre>\n<h2>Grade</h2>\n<pre>{}</pre>",
        xml(performance.trim_start_matches("## Performance\n\n")),
        xml(report.grade_text().trim_start_matches("## Grade\n\n"))
    );
    page(&format!("Grade report: {}", report.name), &body)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::*;
    use crate::harness::{BuildFailure, TAGS_RULE};
    use crate::policy::Refusal;
    use crate::report::Outcome;
    use crate::report::tests::graded;

    fn schema(name: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn type_name(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Every way `value` departs from `schema` (see schemas/README.md), by path.
    fn violations(value: &Value, schema: &Value, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                out.push(format!("{at}: {value} is not one of {allowed:?}"));
            }
            return out;
        }
        let actual = type_name(value);
        let fits = |t: &Value| t == actual || (t == "number" && actual == "integer");
        let ok = match &schema["type"] {
            Value::Array(types) => types.iter().any(fits),
            t => fits(t),
        };
        if !ok {
            out.push(format!("{at}: a {actual}, not {}", schema["type"]));
            return out;
        }
        if let Value::Object(fields) = value {
            let required = schema["required"].as_object();
            let optional = schema["optional"].as_object();
            for (name, field) in required.into_iter().flatten() {
                match fields.get(name) {
                    Some(v) => out.extend(violations(v, field, &format!("{at}.{name}"))),
                    None => out.push(format!("{at}.{name}: required, missing")),
                }
            }
            if required.is_some() || optional.is_some() {
                for (name, v) in fields {
                    if required.is_some_and(|r| r.contains_key(name)) {
                        continue;
                    }
                    match optional.and_then(|o| o.get(name)) {
                        Some(field) => out.extend(violations(v, field, &format!("{at}.{name}"))),
                        None => out.push(format!("{at}.{name}: not a field of the format")),
                    }
                }
            }
        }
        if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
            for (i, v) in items.iter().enumerate() {
                out.extend(violations(v, item, &format!("{at}[{i}]")));
            }
        }
        out
    }

    /// Every way the XML `text` departs from the JUnit schema.
    fn junit_violations(text: &str) -> Vec<String> {
        let schema = schema("junit.json");
        let document = roxmltree::Document::parse(text).unwrap();
        let mut out = Vec::new();
        let root = document.root_element();
        if root.tag_name().name() != schema["root"] {
            out.push(format!("root <{}>", root.tag_name().name()));
        }
        for node in root.descendants().filter(roxmltree::Node::is_element) {
            let name = node.tag_name().name();
            let Some(element) = schema["elements"].get(name) else {
                out.push(format!("<{name}> is not an element of the format"));
                continue;
            };
            let listed = |key: &str, attribute: &str| {
                element[key]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == attribute))
            };
            for required in element["required"].as_array().into_iter().flatten() {
                if node.attribute(required.as_str().unwrap()).is_none() {
                    out.push(format!("<{name}> lacks {required}"));
                }
            }
            for attribute in node.attributes() {
                if !listed("required", attribute.name()) && !listed("optional", attribute.name()) {
                    out.push(format!("<{name}> has {}", attribute.name()));
                }
            }
            for child in node.children().filter(roxmltree::Node::is_element) {
                if !listed("children", child.tag_name().name()) {
                    out.push(format!("<{name}> holds <{}>", child.tag_name().name()));
                }
            }
        }
        out
    }

    /// A report of each kind: all kept, two rules lost (one with a failure page), a
    /// grade withheld, a build that fails on `rawheap::tags`.
    fn reports() -> Vec<Report> {
        let kept = graded();
        let mut lost = graded();
        lost.rules[1].1 = Outcome::Broken {
            report: "Heap broke the rule <x> & \"y\"\nfailure page: /tmp/p.html\n".into(),
            found_by: vec![lost.rules[1].0.to_owned()],
        };
        lost.rules[2].1 = Outcome::Failed("it crashed \u{1b}[31m".into());
        let mut withheld = graded();
        withheld.rules.clear();
        withheld.refused = vec![Refusal {
            dependency: "tlsf".into(),
            why: "not allowed".into(),
        }];
        let mut unbuilt = graded();
        unbuilt.rules.clear();
        unbuilt.build_failure = Some(BuildFailure::new(
            "error[E0432]: unresolved import `rawheap::tags`".into(),
            true,
        ));
        vec![kept, lost, withheld, unbuilt]
    }

    #[test]
    fn gradescope_results_hold_the_fields_gradescope_requires() {
        let schema = schema("gradescope.json");
        for report in reports() {
            let results = gradescope(&report);
            assert_eq!(
                violations(&results, &schema, "results"),
                Vec::<String>::new()
            );
            let tests = results["tests"].as_array().unwrap();
            if !report.rules.is_empty() {
                assert_eq!(
                    tests.len(),
                    RULES.len() + 1,
                    "one test per rule and performance"
                );
                let sum: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
                let max: f64 = tests.iter().map(|t| t["max_score"].as_f64().unwrap()).sum();
                assert!(
                    (sum - report.grade()).abs() < 1e-9,
                    "{sum} vs {}",
                    report.grade()
                );
                assert!((max - 100.0).abs() < 1e-9);
            }
            assert_eq!(results["score"].as_f64().unwrap(), report.grade());
        }
        let withheld = &reports()[2];
        let results = gradescope(withheld);
        assert_eq!(results["tests"][0]["name"], "dependency policy: tlsf");
        let unbuilt = gradescope(&reports()[3]);
        assert!(
            unbuilt["tests"][0]["output"]
                .as_str()
                .unwrap()
                .starts_with(TAGS_RULE)
        );
    }

    #[test]
    fn junit_has_one_testcase_per_rule_and_a_failure_for_each_lost_one() {
        for report in reports() {
            let xml = junit(&report);
            assert_eq!(junit_violations(&xml), Vec::<String>::new(), "{xml}");
            let document = roxmltree::Document::parse(&xml).unwrap();
            let cases: Vec<_> = document
                .descendants()
                .filter(|n| n.has_tag_name("testcase"))
                .collect();
            let failures = cases
                .iter()
                .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
                .count();
            if !report.rules.is_empty() {
                assert_eq!(cases.len(), RULES.len() + 1);
                let lost = report.lost().len();
                // Performance fails too when a rule is lost (P does not count).
                assert_eq!(failures, if lost == 0 { 0 } else { lost + 1 });
                assert_eq!(cases[1].attribute("name"), Some(report.rules[1].0));
            } else {
                assert_eq!((cases.len(), failures), (1, 1));
            }
        }
    }

    #[test]
    fn the_json_and_markdown_reports_hold_their_fields() {
        let json_schema = schema("json.json");
        let markdown = schema("markdown.json");
        for (report, kind) in reports()
            .iter()
            .zip(["graded", "graded", "withheld", "unbuilt"])
        {
            let json = serde_json::from_str::<Value>(&Format::Json.render(report)).unwrap();
            assert_eq!(
                violations(&json, &json_schema, "report"),
                Vec::<String>::new()
            );
            let text = Format::Markdown.render(report);
            for phrase in markdown[kind].as_array().unwrap() {
                assert!(
                    text.contains(phrase.as_str().unwrap()),
                    "{phrase} in\n{text}"
                );
            }
        }
    }

    #[test]
    fn the_schemas_catch_what_they_describe() {
        let schema = schema("gradescope.json");
        let mut results = gradescope(&graded());
        results["tests"][0]["visibility"] = "everyone".into();
        results["tests"][1]
            .as_object_mut()
            .unwrap()
            .remove("max_score");
        results["bogus"] = 1.into();
        assert_eq!(violations(&results, &schema, "r").len(), 3);
        let broken = junit(&graded()).replace("classname=", "klass=");
        assert!(!junit_violations(&broken).is_empty());
    }

    #[test]
    fn html_links_a_lost_rule_to_its_failure_page_only_when_there_is_one() {
        let report = &reports()[1];
        let page = html(report);
        roxmltree::Document::parse(&page.replace("<!DOCTYPE html>\n", "")).unwrap();
        assert_eq!(page.matches("href=\"file://").count(), 1, "{page}");
        assert!(page.contains("<a href=\"file:///tmp/p.html\">failure page</a>"));
        assert!(page.contains(&format!("<a href=\"#{}\">", report.rules[2].0)));
        assert!(!page.contains("<x>"), "escaped");
        assert_eq!(html(&reports()[0]).matches("href=").count(), 0);
    }
}
