use super::*;

/// A page built like Athens' default home page: a doctype, a head with a
/// `<style>` sheet, `{{ .Host }}` in `<pre>` and paragraph text, an
/// optional GONOSUMDB section, and JSON-like braces in the text.
pub(crate) const ATHENS_LIKE: &str = r#"<!DOCTYPE html>
<html>
<head>
	<meta charset="utf-8"></meta>
	<title>Module proxy</title>
	<style>
		body { font-family: Arial, sans-serif; margin: 20px; }
		pre { background-color: #eee; padding: 10px; width: fit-content; }
	</style>
</head>
<body>
	<h1>Module proxy</h1>
	<pre>GOPROXY={{ .Host }},direct</pre>
	{{ if .NoSumPatterns }}
	<p>Private modules:</p>
	<pre>GONOSUMDB={{ .NoSumPatterns }}</pre>
	{{ end }}
	<p>See the <a href="/catalog">catalog</a>.</p>
	<pre>GET {{ .Host }}/example.com/m/@v/list</pre>
	<pre>{
	"Version": "v1.0.0"
}</pre>
	<p>If {{ .Host }}/example.com/m has no dependencies, its go.mod is short.</p>
</body>
</html>
"#;

/// Templates inside the subset, each rendered here and by Go.
const ACCEPTED: &[&str] = &[
    ATHENS_LIKE,
    "plain text only\n",
    "a{{.Host}}b{{ .NoSumPatterns }}c{{ .Missing }}d",
    "{{ if .Missing }}yes{{ else }}no{{ end }}",
    "{{if .NoSumPatterns}}P{{else if .Host}}H{{else}}N{{end}}",
    "x <!-- dropped {{ .Host }} --> y<!--unclosed at end?-->z",
    "<title>{{ .Host }}</title><textarea>{{.Host}}</textarea>",
    "  {{- .Host -}}  \n {{/* a comment */}} {{- /* trimmed */ -}} [{{ .Host }}]",
    "<a href='/x' class=plain data-x=\"1\">link</a><br/><img src=\"a.png\">",
    "<meta http-equiv=\"refresh\" content=\"30\">{{ .Host }}",
    "1 < 2 and 3 > 2, a<{{ .Host }}, </ and <",
    "<p\n  title=\"t\"\n>{{ .Host }}</p>",
    "<style>p { color: red }</style><script src=\"/s.js\"></script>{{.Host}}",
    "{{ if .Host }}<b>{{ .Host }}</b>{{ end }}",
    "é {{ .Host }} ü",
    "<title>a < b {{ .Host }}</title><!doctype html><!DOCTYPE x>",
    "{{ if .Host }}<p>{{ end }}x</p><{{ .Host }}",
];

/// Host and pattern values with everything html/template escapes.
const VALUES: &[(&str, &str)] = &[
    ("http://proxy.example:3000", ""),
    (
        "https://a+b.example/<x>&\"q\"'",
        "corp.example/*,git.corp/+x",
    ),
    ("h\0ost", "<script>"),
];

#[derive(serde::Deserialize)]
struct GoAnswer {
    out: String,
    error: String,
}

/// Renders every (template, host, patterns) case with Go's html/template
/// over Athens' data map, the way Athens' home handler does.
fn go_render(cases: &[(&str, &str, &str)]) -> Vec<GoAnswer> {
    let go = fixtures::oracle::locate_go().expect("the go command (scripts/test.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("go.mod"),
        "module hometemplate\n\ngo 1.21\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("main.go"), GO_PROGRAM).unwrap();
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|(t, h, p)| serde_json::json!({"template": t, "host": h, "patterns": p}))
        .collect();
    std::fs::write(
        dir.path().join("cases.json"),
        serde_json::to_vec(&input).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(go)
        .args(["run", ".", "cases.json"])
        .current_dir(dir.path())
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .output()
        .expect("running go");
    assert!(
        out.status.success(),
        "go run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("go output is JSON")
}

const GO_PROGRAM: &str = r#"package main

import (
	"encoding/json"
	"html/template"
	"os"
	"strings"
)

type testCase struct{ Template, Host, Patterns string }
type answer struct {
	Out   string `json:"out"`
	Error string `json:"error"`
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var cases []testCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		panic(err)
	}
	var answers []answer
	for _, c := range cases {
		data := map[string]string{"Host": c.Host, "NoSumPatterns": c.Patterns}
		var a answer
		t, err := template.New("home").Parse(c.Template)
		if err == nil {
			var b strings.Builder
			err = t.ExecuteTemplate(&b, "home", data)
			a.Out = b.String()
		}
		if err != nil {
			a.Error = err.Error()
		}
		answers = append(answers, a)
	}
	json.NewEncoder(os.Stdout).Encode(answers)
}
"#;

#[test]
fn renders_as_go_html_template_does() {
    let mut cases = Vec::new();
    for template in ACCEPTED {
        for (host, patterns) in VALUES {
            cases.push((*template, *host, *patterns));
        }
    }
    let answers = go_render(&cases);
    assert_eq!(answers.len(), cases.len());
    for ((template, host, patterns), go) in cases.iter().zip(answers) {
        assert_eq!(go.error, "", "Go refused {template:?}");
        let ours = HomeTemplate::parse(template)
            .unwrap_or_else(|e| panic!("{template:?} refused: {e}"))
            .render(&[("Host", host), ("NoSumPatterns", patterns)]);
        assert_eq!(ours, go.out, "{template:?} with {host:?} {patterns:?}");
    }
}

#[test]
fn the_athens_like_page_renders_to_the_expected_page() {
    let page = HomeTemplate::parse(ATHENS_LIKE)
        .unwrap()
        .render(&[("Host", "https://proxy.example"), ("NoSumPatterns", "")]);
    assert!(page.contains("<pre>GOPROXY=https://proxy.example,direct</pre>"));
    assert!(page.contains("GET https://proxy.example/example.com/m/@v/list"));
    assert!(!page.contains("GONOSUMDB"));
    assert!(!page.contains("{{"));
    let page = HomeTemplate::parse(ATHENS_LIKE)
        .unwrap()
        .render(&[("Host", "h"), ("NoSumPatterns", "a.example/*,b")]);
    assert!(page.contains("<pre>GONOSUMDB=a.example/*,b</pre>"));
}

#[test]
fn constructs_outside_the_subset_are_refused_with_their_line() {
    for (template, line, says) in [
        ("{{ .Host | html }}", 1, "is not supported"),
        ("a\n{{ printf \"%s\" .Host }}", 2, "is not supported"),
        ("{{ range .X }}{{ end }}", 1, "is not supported"),
        ("{{ with .Host }}{{ . }}{{ end }}", 1, "is not supported"),
        ("{{ . }}", 1, "is not supported"),
        ("{{ .Host.Len }}", 1, "is not supported"),
        ("{{ template \"x\" }}", 1, "is not supported"),
        ("{{ define \"x\" }}{{ end }}", 1, "is not supported"),
        ("\n\n{{ if .Host }}", 3, "no {{ end }}"),
        ("{{ end }}", 1, "unexpected {{ end }}"),
        ("{{ else }}", 1, "unexpected {{ else }}"),
        (
            "{{ if .A }}{{ else }}{{ else }}{{ end }}",
            1,
            "after {{ else }}",
        ),
        ("{{ .Host ", 1, "unclosed action"),
        ("{{/* x ", 1, "unclosed comment"),
        ("{{/* x */ .Host }}", 1, "comment ends before"),
        ("{{}}", 1, "missing value"),
        ("<a href=\"{{ .Host }}\">", 1, "inside an attribute value"),
        ("<a {{ .Host }}>", 1, "inside an HTML tag"),
        ("<script>var h = 1;</script>", 1, "inline <script>"),
        ("<style>{{ .Host }}</style>", 1, "inside <style>"),
        ("<style>/* c */</style>", 1, "comments"),
        ("<p style=\"/* c */\">", 1, "comments"),
        ("<p onclick=\"x() // c\">", 1, "comments"),
        ("<p x\"y=1>", 1, "attribute name"),
        ("<p", 1, "ends inside an HTML tag"),
        ("<!-- open", 1, "ends inside an HTML comment"),
        ("{{ if .A }}<p{{ end }}>", 1, "different HTML contexts"),
    ] {
        let e = HomeTemplate::parse(template)
            .err()
            .unwrap_or_else(|| panic!("{template:?} must be refused"));
        assert_eq!(e.line, line, "{template:?}: {e}");
        assert!(e.message.contains(says), "{template:?}: {e}");
    }
}

#[test]
fn go_refuses_what_breaks_the_template_too() {
    // The structural errors are errors in Go as well (so Athens would
    // answer 500 on every request); the refused HTML contexts are not.
    let broken = [
        "{{ if .Host }}",
        "{{ end }}",
        "{{ .Host ",
        "{{/* x */ .Host }}",
        "<p",
        "{{ if .A }}<p{{ end }}>",
    ];
    let cases: Vec<_> = broken.iter().map(|t| (*t, "h", "")).collect();
    for (template, go) in broken.iter().zip(go_render(&cases)) {
        assert_ne!(go.error, "", "Go accepted {template:?}");
    }
}
