package e2e

import (
	"fmt"
	"os"
)

func fmtInts(v []int) string { return fmt.Sprint(v) }

func fmtEntries(es []os.DirEntry) string {
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return fmt.Sprint(names)
}
