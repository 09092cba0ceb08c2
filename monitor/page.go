package monitor

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// The timeline's geometry, in SVG user units (the SVG scales to the
// screen's width).
const (
	tlWidth  = 1000.0
	tlLeft   = 110.0 // room for the purpose labels
	tlRight  = 10.0
	tlTop    = 28.0
	tlRowH   = 22.0
	tlBarH   = 14.0
	tlGroupG = 10.0
)

// Timeline is the SVG timeline's drawing: computed in Go, so the template
// only places shapes.
type Timeline struct {
	Height float64
	Bars   []tlBar
	Labels []tlLabel
	Ticks  []tlTick
	Marks  []tlMark
	NowX   float64
	Window []tlBar // renewal windows
}

type tlBar struct {
	X, Y, W, H float64
	Class      string
	Title      string
	Kid        string
}

type tlLabel struct {
	X, Y float64
	Text string
}

type tlTick struct {
	X    float64
	Text string
}

type tlMark struct {
	X, Y  float64
	Title string
}

// stateSegments splits a version's lifetime by its state history.
func stateSegments(r KeyRow, end time.Time) []struct {
	from, to time.Time
	state    keyset.State
} {
	var segs []struct {
		from, to time.Time
		state    keyset.State
	}
	hist := r.History
	if len(hist) == 0 {
		hist = []keyset.Transition{{State: r.State, At: r.NotBefore}}
	}
	for i, t := range hist {
		to := end
		if i+1 < len(hist) {
			to = hist[i+1].At
		}
		if t.State == keyset.Retired {
			continue // a retired key's bar ends at its retirement
		}
		segs = append(segs, struct {
			from, to time.Time
			state    keyset.State
		}{t.At, to, t.State})
	}
	return segs
}

// BuildTimeline lays out every key version by purpose from a little before
// now to past the latest expiry.
func BuildTimeline(st *Status) Timeline {
	now := st.Generated
	from, to := now.AddDate(0, -3, 0), now.AddDate(0, 6, 0)
	for _, k := range st.Keys {
		if k.State != keyset.Retired && k.NotAfter.After(to) {
			to = k.NotAfter
		}
	}
	to = to.AddDate(0, 0, 14)
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 {
		f := t.Sub(from).Seconds() / span
		return tlLeft + max(0, min(1, f))*(tlWidth-tlLeft-tlRight)
	}
	var tl Timeline
	y := tlTop
	for _, p := range pki.Purposes {
		var rows []KeyRow
		for _, k := range st.Keys {
			if k.Purpose == p && k.NotAfter.After(from) {
				rows = append(rows, k)
			}
		}
		slices.SortFunc(rows, func(a, b KeyRow) int { return a.NotBefore.Compare(b.NotBefore) })
		tl.Labels = append(tl.Labels, tlLabel{X: 4, Y: y + tlBarH - 2, Text: string(p)})
		if len(rows) == 0 {
			y += tlRowH
		}
		for _, r := range rows {
			end := r.NotAfter
			for _, seg := range stateSegments(r, end) {
				x0, x1 := x(seg.from), x(seg.to)
				if x1 <= x0 {
					continue
				}
				tl.Bars = append(tl.Bars, tlBar{X: x0, Y: y, W: x1 - x0, H: tlBarH, Class: "st-" + string(seg.state), Kid: r.Kid,
					Title: fmt.Sprintf("%s %s: %s from %s to %s", p, r.Kid, seg.state, seg.from.UTC().Format("2006-01-02"), seg.to.UTC().Format("2006-01-02"))})
			}
			if !r.RenewAt.IsZero() {
				x0, x1 := x(r.RenewAt), x(r.NotAfter)
				tl.Window = append(tl.Window, tlBar{X: x0, Y: y - 2, W: max(x1-x0, 1), H: tlBarH + 4, Class: "renew",
					Title: fmt.Sprintf("renewal window of %s: from %s", r.Kid, r.RenewAt.UTC().Format("2006-01-02 15:04Z"))})
			}
			y += tlRowH
		}
		y += tlGroupG
	}
	for _, s := range st.Next {
		if s.At.IsZero() {
			continue
		}
		row := tlTop
		// The mark sits on its purpose's label line.
		for _, l := range tl.Labels {
			if l.Text == string(s.Purpose) {
				row = l.Y - tlBarH + 2
			}
		}
		tl.Marks = append(tl.Marks, tlMark{X: x(s.At), Y: row + tlBarH/2, Title: fmt.Sprintf("next: %s %s at %s", s.Purpose, s.Action, s.At.UTC().Format("2006-01-02 15:04Z"))})
	}
	for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0); m.Before(to); m = m.AddDate(0, 1, 0) {
		if m.Month()%3 == 1 {
			tl.Ticks = append(tl.Ticks, tlTick{X: x(m), Text: m.Format("Jan 2006")})
		}
	}
	tl.NowX = x(now)
	tl.Height = y + 8
	return tl
}

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") },
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"ms":   func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() },
	"f":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"live": func(s keyset.State) bool { return s != keyset.Retired },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>ofmkeys: {{.S.Level}} · {{.S.DCID}}</title>
<style>
:root{--ok:#1a7f37;--warn:#9a6700;--crit:#cf222e;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg)}
body{margin:0 auto;max-width:1100px;padding:12px 16px}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
.level{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff;font-weight:600;text-transform:uppercase;font-size:.85rem}
.level-ok{background:var(--ok)}.level-warning{background:var(--warn)}.level-critical{background:var(--crit)}
.muted{color:var(--muted);font-size:.85rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted)}
code{font-size:.8rem;word-break:break-all}
.sev-critical{color:var(--crit);font-weight:600}.sev-warning{color:var(--warn);font-weight:600}
.pass{color:var(--ok)}.fail{color:var(--crit);font-weight:600}
svg{width:100%;min-width:640px;height:auto;display:block}
svg text{font-size:11px;fill:var(--muted)}
.st-staged{fill:#b6c2cf}.st-awaiting-registration{fill:#d4a72c}.st-published{fill:#54aeff}.st-active{fill:#2da44e}.st-retiring{fill:#8c959f}
.renew{fill:#fff8c5;stroke:#d4a72c;stroke-dasharray:3 2}
.now{stroke:var(--crit);stroke-width:1.5}
.tick{stroke:var(--line)}
.mark{fill:#8250df}
.legend span{display:inline-block;margin-right:.8rem;font-size:.8rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.25rem;vertical-align:-1px;border-radius:2px}
</style></head><body>
<h1>ofmkeys <span class="level level-{{.S.Level}}" id="level">{{.S.Level}}</span></h1>
<div class="muted">dc_id <code>{{.S.DCID}}</code> · {{ts .S.Generated}}{{range .S.Notes}} · {{.}}{{end}}</div>

<h2>Alerts firing ({{len .S.Alerts}})</h2>
{{if .S.Alerts}}<div class="scroll"><table id="alerts"><tr><th>severity</th><th>rule</th><th>what</th><th>since</th></tr>
{{range .S.Alerts}}<tr><td class="sev-{{.Severity}}">{{.Severity}}</td><td>{{.Rule}}</td><td>{{.Summary}}</td><td>{{if not .Since.IsZero}}{{ts .Since}}{{end}}</td></tr>
{{end}}</table></div>{{else}}<p class="pass" id="alerts">None: every key is fine.</p>{{end}}

<h2>Timeline</h2>
<div class="legend"><span><i class="st-staged" style="background:#b6c2cf"></i>staged</span><span><i style="background:#d4a72c"></i>awaiting registration</span><span><i style="background:#54aeff"></i>published</span><span><i style="background:#2da44e"></i>active</span><span><i style="background:#8c959f"></i>retiring</span><span><i style="background:#fff8c5;border:1px dashed #d4a72c"></i>renewal window</span><span><i style="background:#8250df;border-radius:50%"></i>next transition</span><span><i style="background:#cf222e;width:2px"></i>now</span></div>
<div class="scroll"><svg id="timeline" viewBox="0 0 1000 {{f .T.Height}}" role="img" aria-label="Lifetimes of every key version by purpose">
{{range .T.Ticks}}<line class="tick" x1="{{f .X}}" x2="{{f .X}}" y1="14" y2="{{f $.T.Height}}"/><text x="{{f .X}}" y="11" text-anchor="middle">{{.Text}}</text>
{{end}}{{range .T.Labels}}<text x="{{f .X}}" y="{{f .Y}}" class="purpose">{{.Text}}</text>
{{end}}{{range .T.Window}}<rect class="{{.Class}}" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}"><title>{{.Title}}</title></rect>
{{end}}{{range .T.Bars}}<rect class="bar {{.Class}}" data-kid="{{.Kid}}" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}" rx="2"><title>{{.Title}}</title></rect>
{{end}}{{range .T.Marks}}<circle class="mark" cx="{{f .X}}" cy="{{f .Y}}" r="4"><title>{{.Title}}</title></circle>
{{end}}<line class="now" id="now" x1="{{f .T.NowX}}" x2="{{f .T.NowX}}" y1="14" y2="{{f .T.Height}}"><title>now</title></line>
</svg></div>

<h2>Keys</h2>
<div class="scroll"><table id="keys"><tr><th>purpose</th><th>state</th><th>kid</th><th>not after</th><th>days left</th><th>renews</th></tr>
{{range .S.Keys}}{{if live .State}}<tr><td>{{.Purpose}}</td><td>{{.State}}{{if .Halted}} <span class="fail">halted</span>{{end}}</td><td><code>{{.Kid}}</code></td><td>{{date .NotAfter}}</td><td>{{.DaysLeft}}</td><td>{{if not .RenewAt.IsZero}}{{ts .RenewAt}}{{end}}</td></tr>
{{end}}{{end}}</table></div>

{{if .S.Next}}<h2>Next transitions</h2>
<div class="scroll"><table id="next"><tr><th>when</th><th>purpose</th><th>action</th><th>why</th></tr>
{{range .S.Next}}<tr><td>{{if .At.IsZero}}when an operator acts{{else}}{{ts .At}}{{end}}</td><td>{{.Purpose}}</td><td>{{.Action}}</td><td>{{.Message}}</td></tr>
{{end}}</table></div>{{end}}

<h2>Last proof</h2>
{{with .S.Proof}}<p class="{{if .OK}}pass{{else}}fail{{end}}" id="proof">{{if .OK}}Passed{{else}}FAILED{{end}} at {{ts .At}}{{if not .LastSuccess.IsZero}} · last success {{ts .LastSuccess}}{{end}}</p>
<div class="scroll"><table id="proof-steps"><tr><th>step</th><th>result</th><th>time</th><th>detail</th></tr>
{{range .Steps}}<tr><td>{{.Name}}</td><td class="{{if not .OK}}fail{{else}}pass{{end}}">{{if not .OK}}fail{{else if .Skipped}}skip{{else}}pass{{end}}</td><td>{{ms .Duration}}</td><td>{{if .Error}}{{.Error}}{{else}}{{.Detail}}{{end}}</td></tr>
{{end}}</table></div>{{else}}<p class="muted" id="proof">No proof has run here (ofmkeys serve --sandbox, or ofmkeys check).</p>{{end}}

{{if .S.Watched}}<h2>Watched certificates</h2>
<div class="scroll"><table id="watched"><tr><th>source</th><th>where</th><th>subject</th><th>not after</th><th>days left</th></tr>
{{range .S.Watched}}<tr><td>{{.Source}}</td><td><code>{{.Target}}</code></td><td>{{.Subject}}</td><td>{{date .NotAfter}}</td><td>{{$.DaysLeft .}}</td></tr>
{{end}}</table></div>{{end}}
{{if .S.FileProblems}}<h2>Unreadable watched files</h2><ul>{{range .S.FileProblems}}<li><code>{{.Error}}</code></li>{{end}}</ul>{{end}}
</body></html>
`))

// pageData feeds the template.
type pageData struct {
	S *Status
	T Timeline
}

func (d pageData) DaysLeft(c Cert) int { return c.DaysLeft(d.S.Generated) }

// RenderHTML writes the status page: one self-contained document (inline
// CSS and SVG, no scripts, no external assets).
func RenderHTML(w io.Writer, st *Status) error {
	return page.Execute(w, pageData{S: st, T: BuildTimeline(st)})
}
