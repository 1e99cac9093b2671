package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestScenarioDefaultsAndValidation(t *testing.T) {
	tests := []struct {
		name        string
		s           Scenario
		wantErr     string
		wantUsers   int
		wantSockets int
		wantParams  string
	}{
		{name: "connect defaults", s: &Connect{}, wantUsers: 1000, wantSockets: 1000, wantParams: `{"conns":1000,"settle_s":2}`},
		{name: "connect negative", s: &Connect{Conns: -1}, wantErr: "--conns"},
		{name: "p2p defaults", s: &P2P{}, wantUsers: 2000, wantSockets: 2000, wantParams: `{"pairs":1000,"rate":10000}`},
		{name: "p2p negative rate", s: &P2P{Rate: -5}, wantErr: "--rate"},
		{name: "group defaults aim at 50k deliveries/s", s: &Group{Members: 1000}, wantUsers: 1000, wantSockets: 1000, wantParams: `{"groups":1,"members":1000,"rate":50}`},
		{name: "group of 10,000", s: &Group{Members: 10000, Groups: 1}, wantUsers: 10000, wantSockets: 10000, wantParams: `{"groups":1,"members":10000,"rate":5}`},
		{name: "group of one", s: &Group{Members: 1}, wantErr: "--members at least 2"},
		{name: "churn defaults", s: &Churn{}, wantUsers: 200, wantSockets: 400, wantParams: `{"conns":200,"churn_rate":20,"rate":200,"offline_s":0.1}`},
		{name: "churn odd", s: &Churn{Conns: 3}, wantErr: "even number"},
		{name: "http defaults", s: &HTTP{}, wantUsers: 100, wantSockets: 164, wantParams: `{"rate":1000,"concurrency":64,"pairs":50}`},
		{name: "http no concurrency", s: &HTTP{Concurrency: -1}, wantErr: "--concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{}
			o.fill()
			err := tt.s.check(&o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("check: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.s.users() != tt.wantUsers || tt.s.sockets() != tt.wantSockets {
				t.Errorf("users %d sockets %d, want %d and %d", tt.s.users(), tt.s.sockets(), tt.wantUsers, tt.wantSockets)
			}
			b, err := json.Marshal(tt.s)
			if err != nil || string(b) != tt.wantParams {
				t.Errorf("params %s (%v), want %s", b, err, tt.wantParams)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{Duration: 30 * time.Second}
	o.fill()
	if o.App != "chatbench" || o.Drain != 10*time.Second || o.Deadline != 30*time.Second+10*time.Second+3*time.Minute ||
		o.DialConcurrency != 64 || o.Window != 256 || o.Size != 32 || o.Workers != 32 || o.ConnectTimeout != 10*time.Second {
		t.Fatalf("defaults %+v", o)
	}
}
