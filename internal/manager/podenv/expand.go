package podenv

import "strings"

// Expand expands $(VAR) references in s from vars, as Kubernetes does for
// command, args, env values and subPathExpr: "$$" is an escaped "$", an
// undefined $(X) stays as written, an unterminated "$(" is kept literally,
// and a "$" before anything else is kept with that character. The name is
// everything up to the first ")", so "$(A$(B))" looks up "A$(B".
func Expand(s string, vars func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				// Unterminated: keep "$(" and go on scanning after it, so a
				// later complete reference still expands.
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
			b.WriteByte(next)
			i++
		}
	}
	return b.String()
}

// MapVars looks names up in m, for Expand.
func MapVars(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}
