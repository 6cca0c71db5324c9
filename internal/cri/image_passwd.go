package cri

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// maxPasswd bounds the /etc/passwd berth reads from an image.
const maxPasswd = 1 << 20

// primaryGroup returns, for SupplementalGroupsPolicy Strict, a resolver of
// a user's primary group in the image's /etc/passwd, as Docker itself
// would resolve it: a numeric user without an entry gets group 0, a name
// without one is an error. Only Strict calls the resolver, once per
// CreateContainer; the file is copied out of the image then.
func (s *Service) primaryGroup(ctx context.Context, imageID string) func(user string) (int64, error) {
	if s.imageVolumes == nil {
		return nil
	}
	return func(user string) (int64, error) {
		passwd, err := s.imageVolumes.ReadFile(ctx, imageID, "/etc/passwd", maxPasswd)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		return lookupGroup(passwd, user)
	}
}

// lookupGroup finds user (a name or a uid) in passwd's lines
// name:password:uid:gid:...
func lookupGroup(passwd []byte, user string) (int64, error) {
	uid, numeric := strconv.ParseInt(user, 10, 64)
	sc := bufio.NewScanner(bytes.NewReader(passwd))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		if f[0] != user && (numeric != nil || f[2] != strconv.FormatInt(uid, 10)) {
			continue
		}
		gid, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("user %q: group %q in /etc/passwd is not a number", user, f[3])
		}
		return gid, nil
	}
	if numeric == nil {
		return 0, nil
	}
	return 0, fmt.Errorf("no user %q in the image's /etc/passwd", user)
}

// imageUser is the image's USER, "" for none.
func imageUser(img client.ImageInspectResult) string {
	if img.Config == nil {
		return ""
	}
	return img.Config.User
}
