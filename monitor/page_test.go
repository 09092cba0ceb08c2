package monitor_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// sampleStatus is a keyset in the middle of rotations: a signing key being
// published, an encryption key retiring, a transport certificate waiting
// for registration, one retired key; a proof; alerts; a watched file.
func sampleStatus() *monitor.Status {
	y := func(months int) time.Time { return now.AddDate(0, months, 0) }
	row := func(p pki.Purpose, kid string, st keyset.State, nb, na time.Time, hist ...keyset.Transition) monitor.KeyRow {
		r := monitor.KeyRow{Purpose: p, Kid: kid, State: st, NotBefore: nb, NotAfter: na, DaysLeft: monitor.Cert{NotAfter: na}.DaysLeft(now), History: hist}
		if st == keyset.Active {
			r.RenewAt = na.AddDate(0, 0, -30)
		}
		return r
	}
	tr := func(st keyset.State, at time.Time) keyset.Transition { return keyset.Transition{State: st, At: at} }
	return &monitor.Status{
		DCID: "0123456789abcdef01234567", Level: "critical", Generated: now,
		Keys: []monitor.KeyRow{
			row(pki.Transport, "transport-old-kid", keyset.Active, y(-12), y(1), tr(keyset.Active, y(-12))),
			row(pki.Transport, "transport-new-kid", keyset.AwaitingRegistration, now, y(13), tr(keyset.Staged, now), tr(keyset.AwaitingRegistration, now.Add(time.Hour))),
			row(pki.Signing, "signing-active-kid", keyset.Active, y(-3), y(10), tr(keyset.Published, y(-3)), tr(keyset.Active, y(-3).Add(time.Hour))),
			row(pki.Signing, "signing-retired-kid", keyset.Retired, y(-16), y(-3), tr(keyset.Active, y(-16)), tr(keyset.Retiring, y(-3)), tr(keyset.Retired, y(-3).Add(time.Hour))),
			row(pki.Encryption, "encryption-active-kid", keyset.Active, y(-1), y(12), tr(keyset.Active, y(-1))),
			row(pki.Encryption, "encryption-retiring-kid", keyset.Retiring, y(-13), now.AddDate(0, 0, 5), tr(keyset.Active, y(-13)), tr(keyset.Retiring, y(-1))),
		},
		Next: []rotation.Step{{Purpose: pki.Transport, Action: rotation.ActConfirm, Kid: "transport-new-kid", Manual: true, Message: "register it with PayNet, then ofmkeys confirm"},
			{Purpose: pki.Encryption, Action: rotation.ActRetire, Kid: "encryption-retiring-kid", At: now.AddDate(0, 0, 5), Message: "retention over"}},
		Proof: &monitor.ProofView{OK: false, At: now.Add(-time.Minute), LastSuccess: now.Add(-time.Hour), Steps: []monitor.ProofStep{
			{Name: "discovery", OK: true, Duration: 3 * time.Millisecond, Detail: "endpoints from https://ofp"},
			{Name: "par", OK: false, Duration: 9 * time.Millisecond, Error: "HTTP 401 invalid_client: <b>not registered</b>"}}},
		Alerts: []monitor.Alert{{Rule: monitor.RuleProofFailing, Severity: monitor.Critical, Key: "proof", Summary: "the end-to-end proof fails at par", Since: now.Add(-time.Minute)},
			{Rule: monitor.RuleRegistration, Severity: monitor.Warning, Key: "t", Summary: "the transport certificate transport-new-kid awaits registration", Since: now.Add(-time.Hour)}},
		Watched: []monitor.Cert{{Source: monitor.SourceFile, Target: "/etc/ofp/ca.pem", Subject: "CN=Paynet Sandbox CA", NotAfter: y(30)}},
	}
}

func render(t *testing.T, st *monitor.Status) string {
	t.Helper()
	var b bytes.Buffer
	if err := monitor.RenderHTML(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The page is one self-contained document: no scripts, no external
// assets, and what it quotes is escaped.
func TestTheStatusPageIsSelfContainedAndEscaped(t *testing.T) {
	page := render(t, sampleStatus())
	for _, bad := range []string{"<script", "src=", "<b>not registered</b>", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	if regexp.MustCompile(`href="?https?:`).MatchString(page) {
		t.Error("the page links an external asset")
	}
	if !strings.Contains(page, "&lt;b&gt;not registered&lt;/b&gt;") {
		t.Error("the proof's error is not escaped")
	}
}

// chromium renders a URL headless as root is allowed to (the flags a
// sandboxless machine without a network needs), returning the DOM, or
// taking a screenshot when shot is set.
func chromium(t *testing.T, url, shot string, w, h int) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: make test installs Debian's chromium package (apt-get install chromium)")
	}
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
		"--window-size=" + strconv.Itoa(w) + "," + strconv.Itoa(h)}
	if shot != "" {
		args = append(args, "--screenshot="+shot)
	} else {
		args = append(args, "--dump-dom")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return out.String()
}

// The page as a browser shows it: the DOM holds the timeline with a bar
// for every live key version (and none for the retired one), the "now"
// line, the keys table, the proof and the alerts; screenshots at a laptop's
// and a phone's size show the timeline's colours.
func TestTheStatusPageRendersInHeadlessChromium(t *testing.T) {
	st := sampleStatus()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		monitor.RenderHTML(w, st)
	}))
	defer srv.Close()
	dom := chromium(t, srv.URL, "", 1366, 768)
	for _, want := range []string{`<svg id="timeline"`, `id="now"`, `<table id="keys">`, `id="proof"`, `<table id="alerts">`, "ProofFailing", "FAILED"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered DOM lacks %s", want)
		}
	}
	for _, k := range st.Keys {
		bars := strings.Count(dom, `data-kid="`+k.Kid+`"`)
		if (k.State == keyset.Retired) != (bars == 0) {
			t.Errorf("%s (%s): %d timeline bars", k.Kid, k.State, bars)
		}
		if k.State != keyset.Retired && !strings.Contains(dom, "<code>"+k.Kid+"</code>") {
			t.Errorf("the keys table lacks %s", k.Kid)
		}
	}
	// The signing key's history gives two segments: published, then active.
	if !regexp.MustCompile(`class="bar st-published" data-kid="signing-active-kid"`).MatchString(dom) ||
		!regexp.MustCompile(`class="bar st-active" data-kid="signing-active-kid"`).MatchString(dom) {
		t.Error("the signing key's states are not drawn as segments")
	}
	for _, size := range [][2]int{{1366, 768}, {390, 844}} {
		file := filepath.Join(t.TempDir(), "status.png")
		chromium(t, srv.URL, file, size[0], size[1])
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != size[0] || b.Dy() != size[1] {
			t.Fatalf("screenshot %v, want %v", b, size)
		}
		active, now := countColour(img, color.RGBA{0x2d, 0xa4, 0x4e, 255}), countColour(img, color.RGBA{0xcf, 0x22, 0x2e, 255})
		t.Logf("%dx%d: %d active-bar pixels, %d red (now line, critical badge) pixels", size[0], size[1], active, now)
		if active < 100 || now < 20 {
			t.Errorf("%dx%d: the timeline is not visible in the screenshot", size[0], size[1])
		}
		if size[0] == 1366 {
			os.WriteFile(filepath.Join(os.TempDir(), "ofmkeys-status.png"), mustRead(t, file), 0o644) // for a look by hand
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countColour counts pixels within a small distance of c.
func countColour(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, c.R) && near(g>>8, c.G) && near(bl>>8, c.B) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, want uint8) bool { d := int(v) - int(want); return d > -12 && d < 12 }
