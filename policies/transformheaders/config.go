package transformheaders

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluicegw/sluice/plugins"
)

// Config configures the policy. The operations apply in this order:
// whitelistHeaders, removeHeaders, setHeaders, addHeaders; so headers the
// policy sets or adds are kept even when the whitelist does not name them.
type Config struct {
	// AddHeaders appends a value to each named header, keeping the values
	// it already has.
	AddHeaders []Header `yaml:"addHeaders"`
	// SetHeaders replaces every value of each named header with one value
	// (Gravitee's "set").
	SetHeaders []Header `yaml:"setHeaders"`
	// RemoveHeaders names headers to delete.
	RemoveHeaders []string `yaml:"removeHeaders"`
	// WhitelistHeaders, when not empty, deletes every header it does not
	// name.
	WhitelistHeaders []string `yaml:"whitelistHeaders"`
}

// Header is a header name and a literal value.
type Header struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// Validate checks that names are HTTP field names and values HTTP field
// values, since the same step may run on requests, responses and messages
// that end up as HTTP headers (webhooks, http-get).
func (c *Config) Validate() error {
	var errs []error
	if len(c.AddHeaders)+len(c.SetHeaders)+len(c.RemoveHeaders)+len(c.WhitelistHeaders) == 0 {
		errs = append(errs, plugins.Errorf("", "nothing to do: set addHeaders, setHeaders, removeHeaders or whitelistHeaders"))
	}
	headers := func(field string, hs []Header) {
		for i, h := range hs {
			if err := checkName(h.Name); err != nil {
				errs = append(errs, plugins.Errorf(field, "entry %d: name %v", i+1, err))
			}
			if err := checkValue(h.Value); err != nil {
				errs = append(errs, plugins.Errorf(field, "entry %d (%s): value %v", i+1, h.Name, err))
			}
		}
	}
	names := func(field string, ns []string) {
		for i, n := range ns {
			if err := checkName(n); err != nil {
				errs = append(errs, plugins.Errorf(field, "entry %d: %v", i+1, err))
			}
		}
	}
	headers("addHeaders", c.AddHeaders)
	headers("setHeaders", c.SetHeaders)
	names("removeHeaders", c.RemoveHeaders)
	names("whitelistHeaders", c.WhitelistHeaders)
	return errors.Join(errs...)
}

// checkName accepts an RFC 9110 field name: one or more token characters.
func checkName(n string) error {
	if n == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(n); i++ {
		if !isTokenChar(n[i]) {
			return fmt.Errorf("%q is not a valid header name (character %q)", n, n[i])
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// checkValue refuses the control characters (CR, LF, NUL, ...) that would
// split or corrupt a header on the wire; horizontal tab is allowed.
func checkValue(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("contains control character %q", c)
		}
	}
	return nil
}
