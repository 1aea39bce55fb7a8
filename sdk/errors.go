package sdk

import (
	"errors"
	"fmt"
)

// Code classifies an error a plugin reports, so that the host can tell a
// user's mistake from a plugin's failure without parsing strings.
type Code int

const (
	CodeInternal           Code = iota // the plugin failed
	CodeInvalidArgument                // a bad config value, list line, label...
	CodeNotFound                       // a file, model or session that is not there
	CodeFailedPrecondition             // a call out of order, or state that forbids it
	CodeUnimplemented                  // an optional capability the plugin lacks
)

// Error is an error with a Code. Plugins return it (see Errorf); the host
// receives it back from every Client call.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, CodeInternal when it carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrUnimplemented is returned by a Client for an optional capability the
// plugin does not have.
var ErrUnimplemented = &Error{Code: CodeUnimplemented, Message: "not implemented by the plugin"}
