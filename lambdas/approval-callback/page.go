package main

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ec2patch/ec2patch/internal/contract"
	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

// page is one answer. Every value reaches the HTML through html/template,
// which escapes it for where it appears.
type page struct {
	Status  int
	Title   string
	Message string
	Problem string
	Form    *form
}

// form is the confirmation a GET shows and a POST sends back.
type form struct {
	Action    string // the approval's own path, relative to the link
	RunID     string
	WaveID    string
	Decision  string
	Verb      string
	Deadline  string
	Expires   string
	Signature string
	Approver  string
}

// headers of every answer. The CSP allows no script, no remote resource,
// and a form that posts only to this API; the page is never cached nor
// framed, and the signed link never leaks as a referrer.
func headers() map[string]string {
	return map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
	}
}

var tmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>ec2patch: {{.Title}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}.problem{color:#a00}</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Form}}<p>Run <strong>{{.RunID}}</strong>, wave <strong>{{.WaveID}}</strong>: you are about to <strong>{{.Decision}}</strong> this wave.
Decide before {{.Deadline}}.</p>
{{with $.Problem}}<p class="problem">{{.}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="decision" value="{{.Decision}}">
<input type="hidden" name="expires" value="{{.Expires}}">
<input type="hidden" name="signature" value="{{.Signature}}">
<p><label>Your name or e-mail address<br><input type="text" name="approver" value="{{.Approver}}" required maxlength="200" autocomplete="email"></label></p>
<p><button type="submit">{{.Verb}} wave {{.WaveID}}</button></p>
</form>
{{end}}
</body>
</html>
`))

func refusal(status int, msg string) page {
	title := "Refused"
	if status >= 500 {
		title = "Try again later"
	}
	return page{Status: status, Title: title, Message: msg}
}

// confirm is the page that asks the approver to confirm a decision.
func confirm(a store.Approval, l link, approver, problem string) page {
	verb := "Reject"
	if l.decision == contract.DecisionApprove {
		verb = "Approve"
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusBadRequest
	}
	return page{Status: status, Title: verb + " wave " + a.WaveID + "?", Problem: problem, Form: &form{
		Action: url.PathEscape(a.ID), RunID: a.RunID, WaveID: a.WaveID, Decision: l.decision, Verb: verb,
		Deadline: a.LinkExpiresAt.UTC().Format(time.RFC3339), Expires: l.expires, Signature: l.signature, Approver: approver,
	}}
}

func (p page) response() events.APIGatewayProxyResponse {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		// The template is fixed and its values are strings: this cannot
		// happen short of a bug, and then the page says nothing more.
		return events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError, Headers: headers(),
			Body: "<!DOCTYPE html><title>ec2patch: error</title><p>Internal error.</p>"}
	}
	return events.APIGatewayProxyResponse{StatusCode: p.Status, Headers: headers(), Body: b.String()}
}
