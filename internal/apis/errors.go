package apis

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one field of a resource, named by its path
// ("spec.organizations[1].validators").
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// ErrorList is every problem found in a resource. Validation returns all of
// them at once so that a user fixes a spec in one round.
type ErrorList []FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Add appends a problem with field.
func (l *ErrorList) Add(field, format string, args ...any) {
	*l = append(*l, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Path joins field path elements.
func Path(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// Index returns the path of element i of the list at parent.
func Index(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
