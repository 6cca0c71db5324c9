// Package translate turns CRI configs into Docker create configs.
//
// Everything here is a pure function of its inputs: no Docker calls, no file
// reads (a Localhost seccomp profile is read through the ReadFile hook the
// caller passes). Bad input comes back as an error wrapping
// errdefs.ErrInvalidArgument whose message names the CRI field, so the server
// can answer codes.InvalidArgument without knowing the rules.
package translate
