package podenv

import "testing"

func TestExpand(t *testing.T) {
	vars := MapVars(map[string]string{"A": "alpha", "B": "beta", "EMPTY": "", "A$(B": "weird"})
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "alpha"},
		{"x$(A)y$(B)z", "xalphaybetaz"},
		{"$(EMPTY)", ""},
		{"$(UNDEF)", "$(UNDEF)"},
		{"$(UNDEF)-$(A)", "$(UNDEF)-alpha"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$alpha"},
		{"$$", "$"},
		{"$$$$", "$$"},
		{"$", "$"},
		{"a$", "a$"},
		{"$A", "$A"},
		{"$(A", "$(A"},
		{"$(", "$("},
		{"$(A$(B)", "weird"},
		{"$(X$(A))", "$(X$(A))"},
		{"$(()", "$(()"},
		{"$()", "$()"},
		{"$(A)$(", "alpha$("},
		{"$( $(A)", "$( $(A)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Expand(tt.in, vars); got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
