package monitor

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Notification is what a notifier sends: an alert firing (again, when
// Repeat), or resolved.
type Notification struct {
	Status string    `json:"status"` // "firing" or "resolved"
	Repeat bool      `json:"repeat,omitempty"`
	Alert  Alert     `json:"alert"`
	DCID   string    `json:"dc_id,omitempty"`
	SentAt time.Time `json:"sent_at"`
}

// Notifier delivers notifications. Notify is called from the notifier's
// own queue worker, one at a time; an error is retried.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, n Notification) error
}

// Alerter turns each evaluation's alerts into notifications: firing when
// an alert starts, again every Repeat while it fires, resolved when it
// stops. Only when Leader says so are they sent, so that of several
// replicas watching one keyset one notifies (the others keep the same
// state, to take over). Each notifier has a bounded queue and one worker
// that retries with backoff: a slow or failing receiver delays only its
// own notifications, and never the daemon.
type Alerter struct {
	Notifiers []Notifier
	// Repeat: how often a firing alert is sent again; zero means 4 hours.
	Repeat time.Duration
	// Leader, when set, says whether this replica notifies.
	Leader func() bool
	// DCID goes into every notification.
	DCID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// QueueSize bounds each notifier's queue; zero means 64. A full queue
	// drops the new notification (counted).
	QueueSize int
	// Attempts per notification; zero means 4. Backoff is the first pause
	// between attempts (doubling); zero means 1 s. Timeout bounds each
	// attempt; zero means 10 s.
	Attempts int
	Backoff  time.Duration
	Timeout  time.Duration
	Log      *slog.Logger

	mu     sync.Mutex
	firing map[string]*firing
	queues map[string]chan Notification
	stats  map[string]*NotifierStats
}

type firing struct {
	alert    Alert
	notified time.Time // zero: not sent yet
}

// NotifierStats count what a notifier did.
type NotifierStats struct {
	Sent, Failed, Dropped, Retries int
}

func (a *Alerter) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// Start runs the notifiers' workers until ctx ends; Update may be called
// before.
func (a *Alerter) Start(ctx context.Context) *sync.WaitGroup {
	a.mu.Lock()
	defer a.mu.Unlock()
	var wg sync.WaitGroup
	a.init()
	for _, n := range a.Notifiers {
		q := a.queues[n.Name()]
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.work(ctx, n, q)
		}()
	}
	return &wg
}

func (a *Alerter) init() {
	if a.firing != nil {
		return
	}
	a.firing, a.queues, a.stats = map[string]*firing{}, map[string]chan Notification{}, map[string]*NotifierStats{}
	size := a.QueueSize
	if size <= 0 {
		size = 64
	}
	for _, n := range a.Notifiers {
		a.queues[n.Name()] = make(chan Notification, size)
		a.stats[n.Name()] = &NotifierStats{}
	}
}

// SetDCID sets the dc_id notifications carry, while running.
func (a *Alerter) SetDCID(dc string) {
	a.mu.Lock()
	a.DCID = dc
	a.mu.Unlock()
}

// Update takes one evaluation's alerts and queues the notifications due.
func (a *Alerter) Update(alerts []Alert) {
	now := a.now()
	repeat := a.Repeat
	if repeat <= 0 {
		repeat = 4 * time.Hour
	}
	leader := a.Leader == nil || a.Leader()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	seen := map[string]bool{}
	for _, al := range alerts {
		id := al.ID()
		seen[id] = true
		f := a.firing[id]
		if f == nil {
			al.Since = now
			f = &firing{alert: al}
			a.firing[id] = f
		} else {
			al.Since = f.alert.Since
			f.alert = al // the summary (days left) moves on
		}
		switch {
		case !leader:
		case f.notified.IsZero():
			f.notified = now
			a.queue(Notification{Status: "firing", Alert: al})
		case now.Sub(f.notified) >= repeat:
			f.notified = now
			a.queue(Notification{Status: "firing", Repeat: true, Alert: al})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(a.firing)) {
		if seen[id] {
			continue
		}
		f := a.firing[id]
		delete(a.firing, id)
		if leader && !f.notified.IsZero() {
			a.queue(Notification{Status: "resolved", Alert: f.alert})
		}
	}
}

// Firing returns the alerts firing now, most severe first.
func (a *Alerter) Firing() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Alert
	for _, f := range a.firing {
		out = append(out, f.alert)
	}
	sortAlerts(out)
	return out
}

// Stats returns each notifier's counts.
func (a *Alerter) Stats() map[string]NotifierStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]NotifierStats{}
	for k, v := range a.stats {
		out[k] = *v
	}
	return out
}

// queue hands a notification to every notifier's queue (mu held).
func (a *Alerter) queue(n Notification) {
	n.DCID, n.SentAt = a.DCID, a.now()
	for name, q := range a.queues {
		select {
		case q <- n:
		default:
			a.stats[name].Dropped++
			if a.Log != nil {
				a.Log.Warn("a notifier's queue is full; the notification is dropped", "notifier", name, "alert", n.Alert.ID())
			}
		}
	}
}

// work sends a notifier's queue, retrying each notification.
func (a *Alerter) work(ctx context.Context, n Notifier, q chan Notification) {
	attempts, pause, timeout := a.Attempts, a.Backoff, a.Timeout
	if attempts <= 0 {
		attempts = 4
	}
	if pause <= 0 {
		pause = time.Second
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	for {
		select {
		case <-ctx.Done():
			return
		case note := <-q:
			wait := pause
			for i := range attempts {
				if i > 0 {
					a.count(n.Name(), func(s *NotifierStats) { s.Retries++ })
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
					wait *= 2
				}
				actx, cancel := context.WithTimeout(ctx, timeout)
				err := n.Notify(actx, note)
				cancel()
				if err == nil {
					a.count(n.Name(), func(s *NotifierStats) { s.Sent++ })
					break
				}
				if a.Log != nil {
					a.Log.Warn("notification failed", "notifier", n.Name(), "alert", note.Alert.ID(), "attempt", i+1, "err", err)
				}
				if i == attempts-1 {
					a.count(n.Name(), func(s *NotifierStats) { s.Failed++ })
				}
			}
		}
	}
}

func (a *Alerter) count(name string, f func(*NotifierStats)) {
	a.mu.Lock()
	f(a.stats[name])
	a.mu.Unlock()
}
