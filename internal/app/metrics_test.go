package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

type offsets struct {
	head int64
	at   map[string]int64
	err  error
}

func (o offsets) LogHead(context.Context) (int64, error) { return o.head, o.err }
func (o offsets) ConsumerOffset(_ context.Context, name string) (int64, error) {
	return o.at[name], nil
}

func TestConsumerLag(t *testing.T) {
	lag := newConsumerLag(offsets{head: 120, at: map[string]int64{"profiles": 100}}, "profiles", "new")
	want := `# HELP hearth_event_log_consumer_lag_events Events appended to the log that a consumer (profiles: the profile processor) has yet to read.
# TYPE hearth_event_log_consumer_lag_events gauge
hearth_event_log_consumer_lag_events{consumer="new"} 120
hearth_event_log_consumer_lag_events{consumer="profiles"} 20
`
	if err := testutil.CollectAndCompare(lag, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(newConsumerLag(offsets{err: errors.New("database is closed")}, "profiles"), strings.NewReader("")); err == nil {
		t.Error("a store that cannot be read gave a lag")
	}
}
