package cri

import "testing"

func TestLookupGroup(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\ndefault-user:x:1000:1000::/home:/bin/sh\nbroken\nodd:x:7:x::/:/bin/sh\n")
	tests := []struct {
		user    string
		want    int64
		wantErr bool
	}{
		{"1000", 1000, false},
		{"default-user", 1000, false},
		{"www-data", 33, false},
		{"33", 33, false},
		{"4242", 0, false}, // numeric, unknown: Docker's default group 0
		{"ghost", 0, true},
		{"odd", 0, true},
	}
	for _, tt := range tests {
		got, err := lookupGroup(passwd, tt.user)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("lookupGroup(%q) = %d, %v; want %d, error %v", tt.user, got, err, tt.want, tt.wantErr)
		}
	}
	if got, err := lookupGroup(nil, "1000"); err != nil || got != 0 {
		t.Errorf("no /etc/passwd: %d, %v; want 0", got, err)
	}
}
