package dockertest

import (
	"bytes"
	"context"
	"encoding/json"
	"iter"
	"slices"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

type pullOutcome struct {
	img Image
	err error
}

// Pull is one ImagePull call as the daemon received it.
type Pull struct {
	Ref string
	// RegistryAuth is the X-Registry-Auth value: base64url of the JSON of
	// a registry.AuthConfig.
	RegistryAuth string
}

// SetPull makes ImagePull of ref (exactly as the caller spells it) succeed
// and store img (see AddImage).
func (f *Fake) SetPull(ref string, img Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls[ref] = pullOutcome{img: cloneImage(img)}
}

// SetPullError makes ImagePull of ref fail with err the way Docker reports
// a registry failure met mid-pull: ImagePull succeeds and the response's
// progress stream ends with the error, which Wait returns. (To fail the
// call itself, as for an unreachable daemon, use InjectError.)
func (f *Fake) SetPullError(ref string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls[ref] = pullOutcome{err: err}
}

// SetPullHook sets a function every ImagePull calls, without the fake's
// lock held, before it pulls: a test blocks in it to hold a pull in
// flight. The pull then fails if its context was cancelled meanwhile.
func (f *Fake) SetPullHook(hook func(ref string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pullHook = hook
}

// Pulls returns the ImagePull calls so far, in order.
func (f *Fake) Pulls() []Pull {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pullLog)
}

// OpenPulls is the number of ImagePull responses not yet closed: a caller
// that does not close one leaks a connection to the real daemon.
func (f *Fake) OpenPulls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.openPulls
}

// ImagePull implements docker.Images. A ref set with neither SetPull nor
// SetPullError does not exist: errdefs.ErrNotFound, as Docker answers for
// an unknown repository.
func (f *Fake) ImagePull(ctx context.Context, ref string, opts client.ImagePullOptions) (client.ImagePullResponse, error) {
	f.mu.Lock()
	err := f.begin(ctx, "ImagePull")
	f.pullLog = append(f.pullLog, Pull{Ref: ref, RegistryAuth: opts.RegistryAuth})
	hook := f.pullHook
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if hook != nil {
		hook(ref)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, ok := f.pulls[ref]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("pull access denied for " + ref + ", repository does not exist or may require 'docker login'")
	}
	msgs := []jsonstream.Message{{Status: "Pulling from " + ref, ID: "latest"}}
	if out.err != nil {
		msgs = append(msgs, jsonstream.Message{Error: &jsonstream.Error{Message: out.err.Error()}})
	} else {
		img := f.addImage(out.img)
		msgs = append(msgs, jsonstream.Message{Status: "Digest: " + img.ID}, jsonstream.Message{Status: "Status: Downloaded newer image for " + ref})
	}
	f.openPulls++
	return newPullStream(msgs, out.err, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.openPulls--
	}), nil
}

// pullStream is an ImagePull response: the JSON progress messages as a
// reader, or decoded.
type pullStream struct {
	*bytes.Reader
	msgs  []jsonstream.Message
	err   error // what Wait returns for the error message, kind kept
	close func() error
}

func newPullStream(msgs []jsonstream.Message, err error, onClose func()) *pullStream {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, m := range msgs {
		_ = enc.Encode(m)
	}
	return &pullStream{
		Reader: bytes.NewReader(b.Bytes()),
		msgs:   msgs,
		err:    err,
		close:  sync.OnceValue(func() error { onClose(); return nil }),
	}
}

// Close implements io.Closer.
func (p *pullStream) Close() error { return p.close() }

// JSONMessages implements client.ImagePullResponse.
func (p *pullStream) JSONMessages(ctx context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(yield func(jsonstream.Message, error) bool) {
		for _, m := range p.msgs {
			if err := ctx.Err(); err != nil {
				yield(jsonstream.Message{}, err)
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

// Wait implements client.ImagePullResponse: nil once the stream ends
// without an error message.
func (p *pullStream) Wait(ctx context.Context) error {
	for m, err := range p.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if m.Error != nil {
			return p.err
		}
	}
	return nil
}
