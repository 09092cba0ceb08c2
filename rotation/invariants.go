package rotation

import (
	"fmt"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// CheckInvariants verifies DESIGN.md's invariants on a keyset: at most one
// active version per purpose; distinct kids; a signing key never active
// before published + propagation (emergencies and the first key aside); an
// encryption key kept for its retention after it stops being preferred; a
// purpose that ever had an active key still has one.
func CheckInvariants(ks *keyset.Keyset, pol Policy) error {
	pol = pol.WithDefaults()
	kids := map[string]bool{}
	active := map[pki.Purpose]int{}
	everActive := map[pki.Purpose]bool{}
	for i := range ks.Versions {
		v := &ks.Versions[i]
		if kids[v.Kid+"/"+string(v.Purpose)] {
			return fmt.Errorf("kid %s appears twice for %s", v.Kid, v.Purpose)
		}
		kids[v.Kid+"/"+string(v.Purpose)] = true
		if v.State == keyset.Active {
			active[v.Purpose]++
		}
		activated := v.Since(keyset.Active)
		if !activated.IsZero() {
			everActive[v.Purpose] = true
		}
		if v.Purpose == pki.Signing && !activated.IsZero() {
			published := v.Since(keyset.Published)
			emergency := lastReason(v, keyset.Active) == string(ReasonCompromised) || lastReason(v, keyset.Active) == "rollback"
			if !published.IsZero() && !emergency && activated.Before(published.Add(pol.Propagation)) {
				return fmt.Errorf("signing key %s was activated %v after publication, before the %v propagation window", v.Kid, activated.Sub(published), pol.Propagation)
			}
		}
		if v.Purpose == pki.Encryption {
			stopped, retired := v.Since(keyset.Retiring), v.Since(keyset.Retired)
			if !stopped.IsZero() && !retired.IsZero() && retired.After(stopped) && retired.Before(stopped.Add(pol.EncryptionRetention)) {
				return fmt.Errorf("encryption key %s stopped decrypting %v after it was replaced, before its %v retention", v.Kid, retired.Sub(stopped), pol.EncryptionRetention)
			}
		}
	}
	for _, p := range pki.Purposes {
		if active[p] > 1 {
			return fmt.Errorf("%d active %s keys", active[p], p)
		}
		if everActive[p] && active[p] == 0 && !pendingFor(ks, p) {
			return fmt.Errorf("the %s purpose had an active key and has none now", p)
		}
	}
	return nil
}

func lastReason(v *keyset.Version, st keyset.State) string {
	for i := len(v.History) - 1; i >= 0; i-- {
		if v.History[i].State == st {
			return v.History[i].Reason
		}
	}
	return ""
}

func pendingFor(ks *keyset.Keyset, p pki.Purpose) bool {
	for _, pk := range ks.Pending {
		if pk.Purpose == p {
			return true
		}
	}
	return false
}
