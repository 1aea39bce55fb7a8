// Package iostreams is where zoo's commands read and write, after gh's
// package of the same name: the IOStreams a command gets (with whether each
// output is a terminal), and the progress drawn on them (Progress for a
// pass's iterations, ByteProgress for the weights store's downloads): a bar
// redrawn in place on a terminal, rate-limited plain lines otherwise.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams is where a command reads and writes. Results go to Out,
// progress, logs and hints to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrTTY is true when ErrOut is a terminal: progress bars and colour.
	ErrTTY bool
	// OutTTY is true when Out is a terminal: log lines then go through
	// the progress bar so that the two do not collide.
	OutTTY bool
}

// System returns the process's own streams.
func System() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, ErrTTY: IsTerminal(os.Stderr), OutTTY: IsTerminal(os.Stdout)}
}

// Test returns streams on buffers, none of them a terminal, and the
// buffers: stdin, stdout and stderr.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsTerminal reports whether w is a terminal a bar can be redrawn on: a
// file that is a terminal, with TERM not "dumb".
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

// width is w's width in columns when it is a terminal that says, else 80.
func width(w io.Writer, tty bool) int {
	if f, ok := w.(*os.File); ok && tty {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			return cols
		}
	}
	return 80
}
