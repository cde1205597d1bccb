package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"testing"
)

func newFS() (*flag.FlagSet, *bool, *string) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	return fs, fs.Bool("json", false, "json"), fs.String("database-url", "", "url")
}

func TestParseTakesFlagsAfterArguments(t *testing.T) {
	fs, j, u := newFS()
	if err := Parse(fs, []string{"a", "--json", "b", "--database-url", "x", "--", "--json", "c"}); err != nil {
		t.Fatal(err)
	}
	if !*j || *u != "x" || fmt.Sprint(fs.Args()) != "[a b --json c]" {
		t.Errorf("json %v url %q args %v", *j, *u, fs.Args())
	}
	fs, _, _ = newFS()
	if err := Parse(fs, []string{"-"}); err != nil || fmt.Sprint(fs.Args()) != "[-]" {
		t.Errorf("-: %v %v", err, fs.Args())
	}
}

func TestParseErrors(t *testing.T) {
	for args, want := range map[string]string{
		"--databse-url":  "unknown flag --databse-url; did you mean --database-url?",
		"--data":         "unknown flag --data; did you mean --database-url?",
		"--zzzzzzzz":     "unknown flag --zzzzzzzz (-h lists the flags)",
		"--json=maybe":   `invalid boolean value "maybe" for --json: parse error`,
		"--database-url": "flag --database-url needs a value",
	} {
		fs, _, _ := newFS()
		err := Parse(fs, []string{args})
		var e *Error
		if !errors.As(err, &e) || err.Error() != want {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	fs, _, _ := newFS()
	var h *Help
	if err := Parse(fs, []string{"-h"}); !errors.As(err, &h) || !errors.Is(err, flag.ErrHelp) || h.Flags == "" {
		t.Errorf("-h: %v", err)
	}
}
