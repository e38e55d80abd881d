package telemetry

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Counts from many goroutines, some for labels seen for the first time,
// all land in sluice_http_requests_total under the right labels.
func TestCountRequest(t *testing.T) {
	m := NewMetrics()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				m.CountRequest("a", 200)
				if i%10 == 0 {
					m.CountRequest("b", []int{404, 0}[g%2])
				}
			}
		})
	}
	wg.Wait()
	for _, tc := range []struct {
		api, code string
		want      float64
	}{{"a", "200", 8000}, {"b", "404", 400}, {"b", "000", 400}} {
		if got := testutil.ToFloat64(m.Requests.WithLabelValues(tc.api, tc.code)); got != tc.want {
			t.Errorf("requests{api=%q,code=%q} = %v, want %v", tc.api, tc.code, got, tc.want)
		}
	}
}
