package rotation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/rotation"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func noJitter(string, time.Duration) time.Duration { return 0 }

func TestRenewalTimeIsAPureFunctionOfTheIssuedCertificate(t *testing.T) {
	pol := rotation.Policy{Jitter: noJitter}.WithDefaults()
	for _, tc := range []struct {
		name        string
		life        time.Duration
		renewBefore time.Duration
		want        time.Duration // after notBefore
		err         string
	}{
		{"a 13-month certificate renews at 2/3 of its life", 396 * 24 * time.Hour, 0, 264 * 24 * time.Hour, ""},
		{"a 60-day one renews 30 days before expiry... or at 2/3, the earlier", 60 * 24 * time.Hour, 0, 30 * 24 * time.Hour, ""},
		{"renew-before wins when it is earlier than 2/3", 90 * 24 * time.Hour, 45 * 24 * time.Hour, 45 * 24 * time.Hour, ""},
		{"a lifetime shorter than renew-before is reported, not looped on", 20 * 24 * time.Hour, 0, 0, "due at issue"},
		{"a lifetime with no room for publication is reported", 40 * time.Minute, time.Minute, 0, "no room"},
		{"a negative lifetime is reported", -time.Hour, 0, 0, "not after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pol
			if tc.renewBefore != 0 {
				p.RenewBefore = tc.renewBefore
			}
			at, err := p.RenewalTime("kid", t0, t0.Add(tc.life))
			if tc.err != "" {
				if !errors.Is(err, rotation.ErrLifetime) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrLifetime %q", err, tc.err)
				}
				return
			}
			if err != nil || !at.Equal(t0.Add(tc.want)) {
				t.Fatalf("RenewalTime = %v, %v; want %v", at, err, t0.Add(tc.want))
			}
		})
	}
}

func TestJitterIsBoundedAndStablePerKid(t *testing.T) {
	pol := rotation.DefaultPolicy()
	end := t0.Add(396 * 24 * time.Hour)
	plain, _ := rotation.Policy{Jitter: noJitter}.WithDefaults().RenewalTime("k", t0, end)
	seen := map[time.Time]bool{}
	for _, kid := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		at, err := pol.RenewalTime(kid, t0, end)
		if err != nil {
			t.Fatal(err)
		}
		if at.After(plain) || at.Before(plain.Add(-pol.MaxJitter)) {
			t.Fatalf("kid %s: %v is outside [%v, %v]", kid, at, plain.Add(-pol.MaxJitter), plain)
		}
		again, _ := pol.RenewalTime(kid, t0, end)
		if !again.Equal(at) {
			t.Fatalf("kid %s: jitter changed between calls", kid)
		}
		seen[at] = true
	}
	if len(seen) < 4 {
		t.Errorf("jitter spreads 8 kids over only %d times", len(seen))
	}
	// Jitter is capped at a hundredth of the lifetime for short certificates.
	short, _ := pol.RenewalTime("a", t0, t0.Add(10*time.Hour))
	plainShort, _ := rotation.Policy{Jitter: noJitter}.WithDefaults().RenewalTime("a", t0, t0.Add(10*time.Hour))
	if plainShort.Sub(short) > 6*time.Minute {
		t.Errorf("jitter %v on a 10 h certificate", plainShort.Sub(short))
	}
}

func TestBackoffDoublesToItsCap(t *testing.T) {
	pol := rotation.DefaultPolicy()
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 30: 6 * time.Hour} {
		if got := pol.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
}
