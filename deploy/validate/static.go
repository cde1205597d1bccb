package main

import (
	"debug/elf"
	"errors"
	"fmt"
)

// cmdStatic checks that a binary is a static ELF executable: no program
// interpreter and no shared libraries, so it runs on distroless/static.
func cmdStatic(args []string) error {
	if len(args) != 1 {
		return errors.New("want one binary")
	}
	f, err := elf.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s has a program interpreter: it is dynamically linked (CGO_ENABLED=1?)", args[0])
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", args[0], libs)
	}
	fmt.Printf("  ok    %s is a static %s executable\n", args[0], f.Machine)
	return nil
}
